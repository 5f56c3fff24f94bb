"""The journal in Redis: a hash of pending deliveries (id -> JSON), a hash of dead letters, a
set per running delivery of the ids it caused, and the cron ticks (see :mod:`raypipe.constants`
for the keys). Settling a delivery drops, in one script, its journal entry, what it caused and
the records of its effects (state and stream writes), which no TTL ever drops."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from raypipe import constants
from raypipe.engine.cron import tick_of
from raypipe.engine.delivery import Delivery
from raypipe.engine.journal import Journal
from raypipe.engine.lease import Lease
from raypipe.engine.records import DeadLetter

__all__ = ["RedisJournal", "RedisLease"]

# KEYS: the pending hash. ARGV: the key prefix, then the settled delivery ids. Each id's owned
# effect records (the members of its owned set) go with it.
_SETTLE = """
local prefix = ARGV[1]
for i = 2, #ARGV do
  local id = ARGV[i]
  local owned = prefix .. 'owned:' .. id
  for _, key in ipairs(redis.call('SMEMBERS', owned)) do redis.call('DEL', key) end
  redis.call('DEL', owned, prefix .. 'caused:' .. id)
  redis.call('HDEL', KEYS[1], id)
end
return #ARGV - 1
"""


def _dump(d: Delivery) -> str:
    return json.dumps(dataclasses.asdict(d))


def _load(raw: str) -> Delivery:
    return Delivery.from_dict(json.loads(raw))


class RedisJournal(Journal):
    def __init__(self, url: str, app: str, shard: int = 0, shards: int = 1) -> None:
        from raypipe.state.backends.redis import redis_client

        self._app = app
        self._shard = shard
        self._redis: Any = redis_client(url)
        self._pending = constants.pending_deliveries_key(app, shard)
        self._dead = constants.dead_letters_key(app, shard)
        self._others = [(constants.pending_deliveries_key(app, i),
                         constants.dead_letters_key(app, i))
                        for i in range(shards) if i != shard]
        self._ticks = constants.cron_ticks_key(app)
        self._prefix = constants.effect_key(app, "")[: -len("effect:")]
        self._settle = self._redis.register_script(_SETTLE)

    async def start(self) -> int:
        return int(await self._redis.incr(constants.epoch_key(self._app, self._shard)))

    async def accepted(self, deliveries: Sequence[Delivery], caused: Sequence[tuple[str, str]]
                       ) -> None:
        if not deliveries and not caused:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            if deliveries:
                pipe.hset(self._pending, mapping={d.id: _dump(d) for d in deliveries})
                ticks = {t[0]: repr(t[1]) for d in deliveries if (t := tick_of(d)) is not None}
                if ticks:
                    pipe.hset(self._ticks, mapping=ticks)
            by_parent: dict[str, list[str]] = {}
            for parent, cid in caused:
                by_parent.setdefault(parent, []).append(cid)
            for parent, ids in by_parent.items():
                pipe.sadd(constants.caused_key(self._app, parent), *ids)
            await pipe.execute()

    async def settled(self, delivery_ids: Sequence[str]) -> None:
        if delivery_ids:
            await self._settle(keys=[self._pending], args=[self._prefix, *delivery_ids])

    async def dead(self, entry: DeadLetter) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._dead, entry.id, json.dumps(entry.to_dict()))
            pipe.hdel(self._pending, entry.delivery.id)
            await pipe.execute()

    async def revived(self, entry_id: str, delivery: Delivery) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._pending, delivery.id, _dump(delivery))
            pipe.hdel(self._dead, entry_id)
            await pipe.execute()

    async def pending(self) -> list[Delivery]:
        raw = await self._redis.hgetall(self._pending)
        return sorted((_load(v) for v in raw.values()), key=lambda d: (d.seq, d.id))

    async def dead_letters(self) -> list[DeadLetter]:
        out = [DeadLetter.from_dict(json.loads(raw))
               for raw in (await self._redis.hgetall(self._dead)).values()]
        return sorted(out, key=lambda e: e.dead_at)

    async def caused(self, parents: Sequence[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        parents = list(parents)
        for start in range(0, len(parents), 1000):
            chunk = parents[start:start + 1000]
            async with self._redis.pipeline(transaction=False) as pipe:
                for parent in chunk:
                    pipe.smembers(constants.caused_key(self._app, parent))
                replies = await pipe.execute()
            out += [(p, cid) for p, ids in zip(chunk, replies, strict=True) for cid in ids]
        return out

    async def other_shards_owners(self) -> list[str]:
        if not self._others:
            return []
        # Both hashes are keyed by delivery id (a dead letter's id is its delivery's).
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in (k for pair in self._others for k in pair):
                pipe.hkeys(key)
            replies = await pipe.execute()
        return [owner for reply in replies for owner in reply]

    async def ticked(self, step: str, due: float) -> None:
        await self._redis.hset(self._ticks, step, repr(due))

    async def last_tick(self, step: str) -> float | None:
        raw = await self._redis.hget(self._ticks, step)
        return None if raw is None else float(raw)

    async def close(self) -> None:
        await self._redis.aclose()


# KEYS: the lease. ARGV: the owner, the term in ms. Taken if free, renewed if the owner's.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class RedisLease(Lease):
    """The cron lease in the app's Redis: a key holding its owner, expiring with its term."""

    def __init__(self, url: str, app: str) -> None:
        from raypipe.state.backends.redis import redis_client

        self._redis: Any = redis_client(url)
        self._key = constants.cron_lease_key(app)
        self._acquire = self._redis.register_script(_ACQUIRE)

    async def acquire(self, owner: str, seconds: float) -> bool:
        return bool(await self._acquire(keys=[self._key], args=[owner, int(seconds * 1000)]))
