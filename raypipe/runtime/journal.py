"""The dispatcher's journal: deliveries accepted and not yet settled, dead letters, and the
last tick each cron step fired.

With the memory backend the journal is the dispatcher's own memory. With Redis, a delivery is
written before ``publish`` answers and removed once done (or moved to the dead letters), so a
restarted dispatcher, or a whole cluster started again, re-runs every delivery that was
accepted but not finished; effects already applied are not applied twice (see
:mod:`raypipe.effects`), and dead letters outlive the actor.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from raypipe import constants
from raypipe.delivery import Delivery
from raypipe.runtime.loopbatch import LoopBatcher, Outcome

__all__ = ["Journal", "make_journal"]


class Journal:
    """In memory: nothing to recover after a restart."""

    def __init__(self) -> None:
        self._ticks: dict[str, float] = {}

    async def accepted(self, deliveries: Sequence[Delivery]) -> None:
        pass

    async def settled(self, delivery_id: str) -> None:
        pass

    async def pending(self) -> list[Delivery]:
        return []

    async def dead(self, entry: dict[str, Any]) -> None:
        pass

    async def revived(self, entry_id: str) -> None:
        pass

    async def dead_letters(self) -> list[dict[str, Any]]:
        return []

    async def ticked(self, step: str, due: float) -> None:
        self._ticks[step] = due

    async def last_tick(self, step: str) -> float | None:
        return self._ticks.get(step)

    async def close(self) -> None:
        pass


class RedisJournal(Journal):
    def __init__(self, url: str, app: str) -> None:
        super().__init__()
        from raypipe.state.backends.redis import redis_client

        self._redis: Any = redis_client(url)
        self._pending = constants.pending_deliveries_key(app)
        self._dead = constants.dead_letters_key(app)
        self._ticks_key = constants.cron_ticks_key(app)
        # A batch task's deliveries settle in one turn of the loop: one HDEL for them all.
        self._settle: LoopBatcher[str, None] = LoopBatcher(self._remove)

    async def _remove(self, delivery_ids: list[str]) -> list[Outcome[None]]:
        await self._redis.hdel(self._pending, *delivery_ids)
        return [(True, None)] * len(delivery_ids)

    async def accepted(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self._redis.hset(self._pending, mapping={
                d.id: json.dumps(dataclasses.asdict(d)) for d in deliveries})

    async def settled(self, delivery_id: str) -> None:
        await self._settle.call(delivery_id)

    async def pending(self) -> list[Delivery]:
        raw = await self._redis.hgetall(self._pending)
        return [Delivery(**json.loads(v)) for _, v in sorted(raw.items())]

    async def dead(self, entry: dict[str, Any]) -> None:
        d: Delivery = entry["delivery"]
        record = {**entry, "delivery": dataclasses.asdict(d)}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._dead, entry["id"], json.dumps(record))
            pipe.hdel(self._pending, d.id)
            await pipe.execute()

    async def revived(self, entry_id: str) -> None:
        await self._redis.hdel(self._dead, entry_id)

    async def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for raw in (await self._redis.hgetall(self._dead)).values():
            entry = json.loads(raw)
            entry["delivery"] = Delivery(**entry["delivery"])
            out.append(entry)
        return sorted(out, key=lambda e: e["dead_at"])

    async def ticked(self, step: str, due: float) -> None:
        await self._redis.hset(self._ticks_key, step, repr(due))

    async def last_tick(self, step: str) -> float | None:
        raw = await self._redis.hget(self._ticks_key, step)
        return None if raw is None else float(raw)

    async def close(self) -> None:
        await self._redis.aclose()


def make_journal(url: str, app: str) -> Journal:
    return Journal() if url == "memory" else RedisJournal(url, app)
