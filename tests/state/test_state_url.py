"""A deploy checks that its state URL names what it says: a plain Redis for ``redis://``, a
Redis Cluster node for ``redis+cluster://`` (a cluster's node behind a plain URL would answer
MOVED to most writes; a plain Redis behind a cluster URL, to the cluster's first command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raypipe.errors import DeployError
from raypipe.runtime.preflight import state_reachable
from raypipe.runtime.spec import AppSpec

APP = Path(__file__).resolve().parent.parent / "apps" / "guarantees"


def _spec(url: str) -> AppSpec:
    return AppSpec.from_dir(APP, name="state-url", state=url)


def test_each_url_is_taken_for_what_it_names(redis_url: str, redis_cluster_url: str) -> None:
    state_reachable(_spec(redis_url))
    state_reachable(_spec(redis_cluster_url))
    node = redis_cluster_url.replace("redis+cluster://", "redis://")
    with pytest.raises(DeployError, match="is a node of a Redis Cluster: name it redis"):
        state_reachable(_spec(node))
    plain = redis_url.replace("redis://", "redis+cluster://")
    with pytest.raises(DeployError, match="is not a node of a Redis Cluster: name it redis"):
        state_reachable(_spec(plain))
