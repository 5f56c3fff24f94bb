"""Effects and how long they are remembered, so that nothing a delivery does applies twice.

A delivery numbers its effects (state writes, stream writes, enqueues) in the order it makes
them; a retry, a recovery after an outage or a replay from the dead letters repeats them with
the same :class:`Effect` ids. The actor that applies an effect keeps its result and answers a
repeat with it instead of applying it again.

A record lives exactly as long as its *owner*, the delivery that made it, can run again: while
it is in flight or dead-lettered. The engine releases a delivery's records once it settles
(:meth:`EffectLog.release`). No clock decides correctness: a replay a week later still finds
every record.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

__all__ = ["Effect", "EffectLog"]


class Effect(NamedTuple):
    """One effect of one delivery: ``owner`` is the delivery's id, ``id`` names the effect."""

    owner: str
    id: str


class EffectLog:
    """In-memory records, grouped by owner. Records without an owner (``owner=None``: ids
    recorded only to catch a call Ray retried) are kept in a bounded, least-recently-recorded
    window instead."""

    def __init__(self, max_unowned: int = 100_000) -> None:
        self._results: dict[str, Any] = {}
        self._owned: dict[str, list[str]] = {}
        self._unowned: OrderedDict[str, None] = OrderedDict()
        self.max_unowned = max_unowned

    def __len__(self) -> int:
        return len(self._results)

    @property
    def owners(self) -> int:
        return len(self._owned)

    def seen(self, effect: Effect | str | None) -> bool:
        return effect is not None and _key(effect) in self._results

    def result(self, effect: Effect | str) -> Any:
        return self._results[_key(effect)]

    def record(self, effect: Effect | None, result: Any = None) -> None:
        if effect is not None:
            self.record_id(effect.owner, effect.id, result)

    def record_id(self, owner: str | None, key: str, result: Any = None) -> None:
        """Remember ``key`` (an effect, message or delivery id) for ``owner``."""
        if key in self._results:
            self._results[key] = result
            return
        self._results[key] = result
        if owner is not None:
            self._owned.setdefault(owner, []).append(key)
            return
        self._unowned[key] = None
        while len(self._unowned) > self.max_unowned:
            old, _ = self._unowned.popitem(last=False)
            self._results.pop(old, None)

    def release(self, owners: list[str] | tuple[str, ...]) -> int:
        """Forget every record of these owners (deliveries that settled); returns how many."""
        n = 0
        for owner in owners:
            for key in self._owned.pop(owner, ()):
                if self._results.pop(key, _GONE) is not _GONE:
                    n += 1
        return n


_GONE = object()


def _key(effect: Effect | str) -> str:
    return effect.id if isinstance(effect, Effect) else effect
