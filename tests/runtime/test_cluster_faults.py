"""Whole-cluster and node faults, with the Redis backend, on throwaway `ray start` clusters:

- the cluster stopped (every process SIGKILLed) during a 1,000-task run and started again:
  `raypipe start` recovers the journal and the run completes, each task applied once and the
  completion fired once;
- two nodes: tasks run on both; the second node killed mid-run: the run completes, nothing lost
  or applied twice;
- a dead letter naming a value put by reference, replayed after the cluster was stopped and
  started again (the object store and the object keeper gone with it): the value is read back
  from the blob store.

The app's state is read straight from Redis, so it can be checked while no cluster runs.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from raypipe import constants
from tests.conftest import drop_app_keys, wait_for
from tests.runtime.raycluster import RAYPIPE, LocalCluster

FAULTS = Path(__file__).resolve().parent.parent / "apps" / "faults"
REFS = FAULTS.parent / "refs"


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster()
    try:
        yield c
    finally:
        c.stop()
        c.close()


class App:
    """The faults app (or another) under a unique name, deployed with `raypipe start`."""

    def __init__(self, cluster: LocalCluster, redis_url: str, app_dir: Path = FAULTS) -> None:
        self.cluster = cluster
        self.app_dir = app_dir
        self.name = f"{app_dir.name}-{uuid.uuid4().hex[:8]}"
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.url = f"http://127.0.0.1:{cluster.serve_port}"

    def start(self) -> None:
        self.cli("start", str(self.app_dir), "--state", self.redis_url,
                 "--port", str(self.cluster.serve_port))

    def cli(self, *args: str) -> str:
        out = self.cluster.run(RAYPIPE, *args, RAYPIPE_NAME=self.name)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def item(self, group: str, key: str) -> Any:
        from raypipe.state.backends.redis_items import read_item

        return read_item(self.redis, self.name, group, key)

    def run(self, n: int, sleep_ms: int) -> str:
        r = httpx.post(f"{self.url}/runs", json={"n": n, "sleep_ms": sleep_ms}, timeout=120)
        assert r.status_code == 202, r.text
        return str(r.json()["run"])

    def done(self, rid: str) -> int:
        return int((self.item("runs", rid) or {}).get("done", 0))

    def check_complete(self, rid: str, n: int) -> dict[str, Any]:
        run = wait_for(lambda: (r := self.item("runs", rid)) and r["done"] == n and r,
                       timeout=300, interval=1, message=lambda: (
                           f"all {n} tasks: {self.done(rid)} done, "
                           f"{self.redis.hlen(constants.pending_deliveries_key(self.name))} "
                           "journaled"))
        assert sorted(map(int, run["seen"])) == list(range(n))
        assert set(run["seen"].values()) == {1}, "a task applied twice"
        wait_for(lambda: self.item("completions", rid), timeout=60, message="the completion")
        return dict(run)

    def cleanup(self) -> None:
        drop_app_keys(self.redis_url, self.name)


@pytest.fixture
def app(cluster: LocalCluster, redis_url: str) -> Iterator[App]:
    a = App(cluster, redis_url)
    try:
        yield a
    finally:
        a.cleanup()


def test_a_stopped_and_restarted_cluster_resumes_a_1000_task_run(cluster: LocalCluster,
                                                                 app: App) -> None:
    n = 1000
    cluster.start_head()
    app.start()
    rid = app.run(n, sleep_ms=40)
    wait_for(lambda: app.done(rid) >= 100, timeout=120, message="progress")
    cluster.stop()  # every process of the cluster, SIGKILLed
    stopped_at = app.done(rid)
    assert stopped_at < n, "the stop must come mid-run"

    cluster.start_head()
    app.start()
    app.check_complete(rid, n)
    time.sleep(2)
    assert app.item("completions", rid) == {"n": 1}
    # `raypipe status` against the restarted cluster: its actors, and the run as one workflow.
    # Repeats of tasks applied before the stop (journaled, not yet settled) may still be
    # running when the last index lands: the workflow completes once they are done.
    def status() -> str:
        out = cluster.run(RAYPIPE, "status", str(FAULTS), RAYPIPE_NAME=app.name)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    shown = wait_for(lambda: (s := status()) and "workflows   1 completed" in s and s,
                     timeout=60, interval=2, message=lambda: status())
    assert "raypipe:dispatcher alive" in shown and "raypipe:state alive" in shown
    assert "state       redis://" in shown and "in flight   0" in shown


def test_two_nodes_share_the_tasks_and_losing_one_loses_nothing(cluster: LocalCluster,
                                                                app: App) -> None:
    n = 300
    cluster.start_head(num_cpus=1)
    side = cluster.add_node(num_cpus=2, resources={"side": 1})
    app.start()
    rid = app.run(n, sleep_ms=40)
    wait_for(lambda: len((app.item("runs", rid) or {}).get("nodes", {})) == 2, timeout=120,
             message="tasks on both nodes")
    assert app.done(rid) < n, "the kill must come mid-run"
    side.kill()

    run = app.check_complete(rid, n)
    assert len(run["nodes"]) == 2
    assert app.item("completions", rid) == {"n": 1}


def test_a_dead_letter_replayed_after_a_cluster_restart_reads_its_value_from_the_blob_store(
        cluster: LocalCluster, redis_url: str) -> None:
    """With Redis state a put is written to the blob store before it answers: the cluster
    stopped (the object store, the keeper and every worker SIGKILLed) and started again, a
    dead letter replayed still finds its value, and the value goes once nothing names it."""
    from raypipe.runtime.object_keeper import blob_store
    from raypipe.runtime.spec import AppSpec

    app = App(cluster, redis_url, REFS)
    try:
        cluster.start_head()
        app.start()
        r = httpx.post(f"{app.url}/refs/fragile", timeout=60,
                       json={"id": "f", "text": "kept over a restart"})
        assert r.status_code == 202, r.text
        ref_id = r.json()["ref"]["id"]
        wait_for(lambda: "fragile" in app.cli("dlq", "list", "--app", str(REFS)),
                 timeout=120, interval=1, message="the fragile step's message dead-lettered")
        store = blob_store(AppSpec.from_dir(REFS, name=app.name, state=redis_url))
        assert store is not None and ref_id in store.ids()
        cluster.stop()

        cluster.start_head()
        app.start()
        app.cli("state", "set", "refs", "fixed", "true", "--app", str(REFS))
        replayed = json.loads(app.cli("dlq", "replay", "--all", "--app", str(REFS)))
        assert len(replayed["replayed"]) == 1
        seen = wait_for(lambda: app.item("refs", "f"), timeout=120, interval=1,
                        message="the replay's run")
        assert seen == {"sha_seen": hashlib.sha256(b"kept over a restart").hexdigest()}
        # Freed (and its blob deleted) once nothing names it, by the new cluster's keeper.
        wait_for(lambda: ref_id not in store.ids(), timeout=120, interval=1,
                 message="the value's blob deleted")
        assert "in flight   0" in app.cli("status", str(REFS))
    finally:
        app.cleanup()
