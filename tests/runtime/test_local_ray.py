"""The Ray that raypipe starts itself (`raypipe dev`, these tests, the benchmarks)."""

from __future__ import annotations

import os
import time


def test_idle_task_workers_outlive_a_pause(ray_session: int) -> None:
    """A fan-out after a pause finds its task workers still there (WARM_WORKERS_ENV): by
    default the raylet ends them a second after they go idle, and the next fan-out waits for
    new ones to start."""
    import ray

    @ray.remote(num_cpus=0.25)
    def worker_pid() -> int:
        time.sleep(0.5)  # all eight at once: eight workers, more than the node's 2 CPUs
        return os.getpid()

    pids = set(ray.get([worker_pid.remote() for _ in range(8)]))
    assert len(pids) > 2
    time.sleep(3)
    assert [p for p in pids if not _alive(p)] == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
