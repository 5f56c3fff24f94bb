"""The journal in Redis, one per dispatcher shard under its own hash tag: a hash of pending
deliveries (id -> JSON), a hash of dead letters, a set per running delivery of the ids it
caused here, and the cron ticks fired while this shard held the lease (see
:mod:`raypipe.constants` for the keys). Settling a delivery drops, in one script, its
journal entry and what it caused here; the records of its effects go from the shards that
keep them (released, or swept after a restart), and what it caused in other shards from
theirs (:meth:`RedisJournal.forgotten`).

The engine imports nothing of this module: :func:`raypipe.engine.journal.make_journal` does,
when the app's state is in Redis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from raypipe import constants
from raypipe.constants import V2Keys
from raypipe.engine.cron import tick_of
from raypipe.engine.delivery import Delivery
from raypipe.engine.journal import Journal
from raypipe.engine.lease import Lease
from raypipe.engine.records import DeadLetter

__all__ = ["RedisJournal", "RedisLease"]

#: The journal's layout (:mod:`raypipe.constants`): 3, each shard under its own hash tag.
JOURNAL_LAYOUT = "3"


# KEYS: the pending hash. ARGV: the prefix of this shard's caused sets, then the settled
# delivery ids. One script rather than a MULTI of HDEL and DEL: the keys are built here, and
# they share the pending hash's slot.
_SETTLE = """
local prefix = ARGV[1]
for i = 2, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('DEL', prefix .. ARGV[i])
end
return #ARGV - 1
"""


def _dump(d: Delivery) -> str:
    # Its fields as ``dataclasses.asdict`` gives them (none is a dataclass), without the deep
    # copy of the payload that made asdict most of the journal's CPU per delivery.
    return json.dumps(vars(d))


def _load(raw: str) -> Delivery:
    return Delivery.from_dict(json.loads(raw))


class RedisJournal(Journal):
    def __init__(self, url: str, app: str, shard: int = 0, shards: int = 1) -> None:
        from raypipe.state.backends.redis import redis_client

        self._app = app
        self._shard, self._shards = shard, shards
        self._redis: Any = redis_client(url)
        self._pending = constants.pending_deliveries_key(app, shard)
        self._dead = constants.dead_letters_key(app, shard)
        self._others = [(constants.pending_deliveries_key(app, i),
                         constants.dead_letters_key(app, i))
                        for i in range(shards) if i != shard]
        self._caused_prefix = constants.caused_key(app, "", shard)
        self._ticks = constants.cron_ticks_key(app, shard)
        self._all_ticks = [constants.cron_ticks_key(app, i) for i in range(shards)]
        self._settle = self._redis.register_script(_SETTLE)

    def _caused(self, parent: str) -> str:
        return self._caused_prefix + parent

    async def start(self) -> int:
        from raypipe.state.backends.redis_layout import moved_once

        await moved_once(self._redis, constants.layout_key(self._app, constants.JOURNAL_SPACE),
                         constants.layout_lock_key(self._app, constants.JOURNAL_SPACE),
                         JOURNAL_LAYOUT, self._from_v2)
        await self._adopt()
        return int(await self._redis.incr(constants.epoch_key(self._app, self._shard)))

    async def _adopt(self) -> None:
        """Take over the pending deliveries and dead letters of the shards past the app's
        count that map to this one (``shards`` lowered, with a restart): nothing accepted
        is left without a dispatcher. Copied, then deleted: an adoption cut short is taken
        up again at the next start, and a copy is keyed by its delivery's id."""
        orphans = range(self._shard + self._shards, constants.MAX_SHARDS, self._shards)
        keys = [(constants.pending_deliveries_key(self._app, i),
                 constants.dead_letters_key(self._app, i)) for i in orphans]
        async with self._redis.pipeline(transaction=False) as pipe:
            for pair in keys:
                pipe.exists(*pair)
            found = await pipe.execute()
        for (pending, dead), n in zip(keys, found, strict=True):
            if not n:
                continue
            for theirs, mine in ((pending, self._pending), (dead, self._dead)):
                entries = await self._redis.hgetall(theirs)
                if entries:
                    await self._redis.hset(mine, mapping=entries)
                await self._redis.delete(theirs)

    async def _from_v2(self, current: str | None) -> None:
        """Layout 2's keys (untagged, one Redis) renamed to this layout's, the ids each
        delivery caused copied to every shard (which shard accepted them was not kept; an id
        offered to a shard that does not own it is never offered there)."""
        r, app = self._redis, self._app
        if not await r.exists(V2Keys.journal(app, 0)["epoch"]):
            return  # no dispatcher ran before layout 3 (shard 0's ran whenever any did)
        for shard in range(constants.MAX_SHARDS):
            for kind, old in V2Keys.journal(app, shard).items():
                if await r.exists(old):
                    new = constants.shard_prefix(app, constants.JOURNAL_SPACE, shard) + kind
                    await r.rename(old, new)
        if await r.exists(V2Keys.cron_ticks(app)):
            await r.rename(V2Keys.cron_ticks(app), constants.cron_ticks_key(app, 0))
        prefix = V2Keys.caused_prefix(app)
        async for old in r.scan_iter(match=constants.glob_escape(prefix) + "*", count=1000):
            ids = await r.smembers(old)
            if ids:
                for shard in range(self._shards):
                    await r.sadd(constants.caused_key(app, old[len(prefix):], shard), *ids)
            await r.delete(old)

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
                pipe.sadd(self._caused(parent), *ids)
            await pipe.execute()

    async def settled(self, delivery_ids: Sequence[str]) -> None:
        if delivery_ids:
            await self._settle(keys=[self._pending], args=[self._caused_prefix, *delivery_ids])

    async def forgotten(self, delivery_ids: Sequence[str]) -> None:
        if delivery_ids:
            await self._redis.delete(*map(self._caused, delivery_ids))

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
                    pipe.smembers(self._caused(parent))
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
        # The lease moves between shards: the last tick is the latest any of them fired.
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self._all_ticks:
                pipe.hget(key, step)
            ticks = [float(t) for t in await pipe.execute() if t is not None]
        return max(ticks) if ticks else None

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
