"""The Celery baseline of bench/fanout.py: the same per-step work as a chord on Redis."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery import Celery

# The per-step work is the one the raypipe app and the raw-Ray baseline run.
sys.path.insert(0, str(Path(__file__).resolve().parent / "apps" / "fanout"))
from shared import work as _work

BROKER = os.environ.get("BENCH_CELERY_URL", "redis://127.0.0.1:6379/14")
app = Celery("bench", broker=BROKER, backend=BROKER)
app.conf.update(worker_prefetch_multiplier=4, task_acks_late=False, result_expires=600,
                worker_hijack_root_logger=False)


@app.task(name="bench.work")
def work(i: int) -> int:
    return _work(i)


@app.task(name="bench.total")
def total(results: list[int]) -> int:
    return sum(results)
