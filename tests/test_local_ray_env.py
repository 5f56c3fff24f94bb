"""What raypipe sets up for a Ray it starts itself (no Ray started here)."""

from raypipe.runtime.deploy import startup_concurrency_env
from raypipe.settings import Settings


def _warns_at(settings: Settings, cpus: int) -> int:
    """How many workers a node holds before its raylet warns (4x its startup concurrency)."""
    env = startup_concurrency_env(settings, cpus)
    return 4 * int(env["RAY_worker_maximum_startup_concurrency"])


def test_the_workers_of_a_normal_run_stay_under_the_raylets_warning() -> None:
    # The seed on 2 CPUs: Serve's controller, proxy and replica, the dispatcher, state,
    # streams, telemetry and object-keeper actors, and 8 task workers of 0.25 CPU.
    runs = 3 + 5 + 8
    assert _warns_at(Settings(), 2) >= 2 * runs
    # Whole-CPU tasks need fewer workers; the raylet's own floor is its CPU count.
    assert _warns_at(Settings(task_num_cpus=1), 2) >= 2 * (3 + 5 + 2)
    assert _warns_at(Settings(task_num_cpus=1), 64) == 4 * 64
    # Each shard brings its dispatcher, its state actor and its own task workers.
    four = 3 + 3 + 4 * (2 + 2 * 4)
    assert _warns_at(Settings(shards=4), 2) >= 2 * four
