"""A state backend of each kind, for the suites that run against every backend: memory, one
Redis, and a Redis Cluster of three primaries (where a transaction whose keys lie in two
slots fails: every write's keys must share its shard's hash tag)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from raypipe.state.backend import StateBackend, make_backend
from tests.conftest import drop_app_keys

BACKENDS = ["memory", "redis", "cluster"]
URL_FIXTURES = {"redis": "redis_url", "cluster": "redis_cluster_url"}


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    app = f"test-{uuid.uuid4().hex[:8]}"  # a key prefix of its own: no test sees another's
    fixture = URL_FIXTURES.get(request.param)
    url = request.getfixturevalue(fixture) if fixture else "memory"
    b = make_backend(url, app)
    yield b
    await b.close()
    if fixture:
        drop_app_keys(url, app)
