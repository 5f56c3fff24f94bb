"""What the tests of a running app share: a Redis of a test's own, to kill, and FIFO groups
to send and read back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from raypipe.runtime.ports import free_port
from raypipe.state.backends.redis_items import read_item
from tests.conftest import wait_for


class OwnRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), timeout=30, interval=0.05, message="redis-server")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None and r.proc.poll() is None:
            r.kill()


class FifoGroups:
    """FIFO groups of the guarantees app (tests/apps/guarantees): ``per_group`` messages sent
    in order to each of ``groups`` groups; each group's item as Redis has it (none while
    Redis is down)."""

    def __init__(self, deployment: Any, db: redis.Redis, groups: int, per_group: int) -> None:
        self.d, self.db = deployment, db
        self.groups, self.per_group = groups, per_group

    def send(self, seqs: range | None = None, only: list[int] | None = None) -> None:
        from raypipe.enqueue import publish
        from raypipe.loader import load_app_cached
        from raypipe.runtime.bridge import runtime_for

        rt = runtime_for(self.d.spec)
        app = load_app_cached(self.d.spec.root, self.d.spec.settings)

        async def go() -> None:
            for seq in seqs or range(self.per_group):  # in order within each group
                await asyncio.gather(*(publish(app, rt, "fifo", {"group": f"g{g}", "seq": seq},
                                               trace_id="fifo", group_id=f"g{g}")
                                       for g in (only or range(self.groups))))

        asyncio.run(go())

    def seqs(self) -> dict[str, list[int]]:
        name, shards = self.d.spec.settings.name, self.d.spec.settings.shards
        try:
            found = {f"g{g}": read_item(self.db, name, "fifo", f"g{g}", shards=shards)
                     for g in range(self.groups)}
        except redis.RedisError:
            return {}
        return {g: item["seq"] for g, item in found.items() if item}

    def wait_progress(self, done: int) -> None:
        wait_for(lambda: sum(map(len, self.seqs().values())) >= done, timeout=120,
                 message="progress")

    def wait_all_in_order(self) -> None:
        wait_for(lambda: (s := self.seqs()) and all(len(s.get(f"g{g}", [])) == self.per_group
                                                    for g in range(self.groups)),
                 timeout=300, interval=0.5, message=lambda: f"every group done: {self.seqs()}")
        assert all(v == list(range(self.per_group)) for v in self.seqs().values()), self.seqs()


def resumes_exactly(d: Any, run: Callable[[], dict[str, Any]], n: int) -> None:
    """Once Redis is back: healthy again, every task of the faults app's run (``run()``: its
    item) done exactly once, nothing left in flight in any shard."""
    from raypipe.runtime.bridge import runtime_for

    def in_flight() -> int:
        return int(asyncio.run(runtime_for(d.spec).stats())["in_flight"])

    wait_for(lambda: httpx.get(f"{d.url}/_raypipe/health", timeout=30).status_code == 200,
             timeout=120, message="health 200 once Redis is back")
    final = wait_for(lambda: (x := run()) and x["done"] == n and x, timeout=300, interval=0.5,
                     message=lambda: f"all {n} tasks, {run().get('done')} done")
    assert sorted(map(int, final["seen"])) == list(range(n))
    assert set(final["seen"].values()) == {1}, "a task applied twice"
    wait_for(lambda: in_flight() == 0, timeout=120,
             message=lambda: f"nothing in flight: {in_flight()} still are")
