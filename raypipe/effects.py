"""Remembering recent effects by id, so that a retried delivery does not apply them twice.

A delivery numbers its effects (state writes, enqueues) in the order it makes them; a retry
that repeats them produces the same ids. The actor that applies an effect keeps its result
here for ``ttl`` seconds and answers a repeat with the first result instead of applying it
again. Retries happen within minutes, so an hour bounds the memory without losing a repeat.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["EffectLog"]

_MISSING = object()


class EffectLog:
    def __init__(self, ttl: float = 3600.0, max_entries: int = 1_000_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, effect: str | None) -> bool:
        return effect is not None and effect in self._entries

    def result(self, effect: str) -> Any:
        return self._entries[effect][1]

    def record(self, effect: str | None, result: Any = None) -> None:
        if effect is None:
            return
        now = self._clock()
        self._entries[effect] = (now, result)
        # Entries are in insertion order, so the expired ones are at the front.
        while self._entries:
            _, (at, _) = next(iter(self._entries.items()))
            if now - at <= self.ttl and len(self._entries) <= self.max_entries:
                break
            self._entries.popitem(last=False)
