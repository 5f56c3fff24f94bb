"""Retry policy: the delay before a handler's next attempt, and retrying the engine's own
bookkeeping until its backend answers."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from raypipe.engine.clock import Clock
from raypipe.trigger_kinds.queue import QueueConfig

__all__ = ["backoff_seconds", "persist"]

log = logging.getLogger("raypipe.engine")

T = TypeVar("T")

#: The engine's own writes (journal, dead letters) wait this long after a first failure, then
#: twice as long each time, up to PERSIST_MAX_DELAY.
PERSIST_FIRST_DELAY = 0.05
PERSIST_MAX_DELAY = 2.0


def backoff_seconds(cfg: QueueConfig, failed_attempt: int,
                    jitter: Callable[[float, float], float] = random.uniform) -> float:
    """Delay before the retry that follows ``failed_attempt`` (1-based): ``backoff_delay_ms``,
    doubled per failed attempt when exponential, never more than ``max_backoff_ms``, with
    +-20% jitter (within the cap)."""
    base = cfg.backoff_delay_ms / 1000
    cap = cfg.max_backoff_ms / 1000
    if cfg.backoff == "fixed":
        delay = base
    else:
        # Capped before it is computed: 2 ** n of a large n is a float overflow.
        delay = cap if failed_attempt > 64 else base * 2 ** (failed_attempt - 1)
    return float(min(cap, min(cap, delay) * jitter(0.8, 1.2)))


async def persist(op: Callable[[], Awaitable[T]], what: str, clock: Clock) -> T:
    """``await op()`` until it succeeds, waiting with capped exponential backoff in between.
    For writes the engine cannot go on without (journal entries, settling, dead letters): a
    backend outage delays them, never loses them. Each op must be idempotent."""
    delay = PERSIST_FIRST_DELAY
    failures = 0
    while True:
        try:
            result = await op()
        except Exception as exc:
            failures += 1
            if failures == 1 or failures % 20 == 0:
                log.warning("%s failed (%s: %s); retrying until the backend answers "
                            "(%d failure(s) so far)", what, type(exc).__name__, exc, failures)
            await clock.sleep(delay)
            delay = min(PERSIST_MAX_DELAY, delay * 2)
            continue
        if failures:
            log.warning("%s succeeded after %d failure(s)", what, failures)
        return result
