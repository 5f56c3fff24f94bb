"""The layout of a key space in Redis, checked once when a backend first uses it, and moved
to the current one (layout 3 for K shards, :mod:`raypipe.constants`) by the first backend
to find it otherwise, while the others wait.

- Layout 1 joined group, item and field ids with U+001F into one key, so ids holding that
  character could name another item's field hash; a key whose ids cannot be told apart is
  refused, by name, not guessed.
- Layout 2 wrote the ids' lengths, and kept every key of the app untagged: a Redis Cluster
  would put one item's transaction in several slots.
- Layout 3 tags each shard's keys: an item, its field hashes, its group's name and the records
  of the writes to it share one slot. A key space laid out for another number of shards
  (``shards`` changed, with a restart) is moved item by item to the shards that now own them.

An effect record names the item it wrote (``at``), so it moves with the item; one that does
not (a clear's, or one written in layout 2) is copied to every shard, where a repeat of its
write may look for it. Records of layout 2 stay where they were until their owner settles
(:meth:`RedisBackend.sweep_records`). Nothing writes to the key space while it is moved: every
backend waits here first. A move that stops halfway is taken up again from where it stopped:
each step copies, then deletes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from raypipe import constants
from raypipe.constants import V2Keys, glob_escape
from raypipe.errors import StateLayoutError
from raypipe.shards import stored_item_shard

__all__ = ["LayoutGate", "ensure_layout", "layout_value", "moved_once"]

#: How long a mover holds the lock without renewing it (it renews every third of this).
LOCK_MS = 30_000
#: How often a backend waiting for another's move looks again.
WAIT_SECONDS = 0.05


def layout_value(shards: int) -> str:
    return f"{constants.STATE_LAYOUT}:{shards}"


async def ensure_layout(client: Any, app: str, space: str, shards: int) -> None:
    """Return once ``app``'s ``space`` is in layout 3 for ``shards`` shards."""
    await moved_once(client, constants.layout_key(app, space),
                     constants.layout_lock_key(app, space), layout_value(shards),
                     lambda current: _Mover(client, app, space, shards).move(current))


async def moved_once(client: Any, marker: str, lock: str, want: str,
                     move: Callable[[str | None], Awaitable[None]]) -> None:
    """Return once ``marker`` holds ``want``: the first caller to take ``lock`` runs
    ``move(what marker held)`` and records ``want``; the others wait for it."""
    token = uuid.uuid4().hex
    while True:
        if await client.get(marker) == want:
            return
        if await client.set(lock, token, nx=True, px=LOCK_MS):
            renew = asyncio.ensure_future(_renew(client, lock, token))
            try:
                current = await client.get(marker)
                if current != want:
                    await move(current)
                    await client.set(marker, want)
            finally:
                renew.cancel()
                if await client.get(lock) == token:
                    await client.delete(lock)
            return
        await asyncio.sleep(WAIT_SECONDS)


async def _renew(client: Any, lock: str, token: str) -> None:
    while True:
        await asyncio.sleep(LOCK_MS / 3000)
        if await client.get(lock) == token:
            await client.pexpire(lock, LOCK_MS)


class _Mover:
    def __init__(self, client: Any, app: str, space: str, shards: int) -> None:
        self.r = client
        self.app, self.space, self.shards = app, space, shards

    def _shard(self, group: str, key: str) -> int:
        return stored_item_shard(self.space, group, key, self.shards)

    async def move(self, current: str | None) -> None:
        if current is not None and current.startswith(constants.STATE_LAYOUT + ":"):
            old = int(current.split(":", 1)[1])
            for shard in range(old):
                await self._reshard(shard, keep=shard < self.shards)
        else:
            await self._from_v2()

    # --- layout 2 (and 1) -> 3 --------------------------------------------------------------
    async def _from_v2(self) -> None:
        app, space = self.app, self.space
        await _fields_to_v2(self.r, app, space)
        groups_key = V2Keys.groups(app, space)
        for group in sorted(await self.r.smembers(groups_key)):
            old_hash = V2Keys.group(app, group, space)
            for key, head in (await self.r.hgetall(old_hash)).items():
                fields = {f: V2Keys.fields_prefix(app, space)
                          + f"{len(group)}:{group}:{len(key)}:{key}:{f}"
                          for f in json.loads(head)["s"]}
                await self._put_item(group, key, head, fields)
                await self.r.hdel(old_hash, key)
            await self.r.delete(old_hash)
        await self.r.delete(groups_key)
        # Records of writes in flight: copied where a repeat looks for them; the originals
        # stay for the sweep to drop with their owners.
        moved = False
        async for owned in self.r.scan_iter(
                match=glob_escape(V2Keys.owned_prefix(app)) + "*", count=1000):
            owner = owned[len(V2Keys.owned_prefix(app)):]
            for ekey in await self.r.smembers(owned):
                raw = await self.r.get(ekey)
                if raw is not None:
                    await self._put_record(owner, ekey[len(V2Keys.effects_prefix(app)):], raw,
                                           range(self.shards))
                    moved = True
        if moved:
            await self.r.set(V2Keys.left(app), "1")

    async def _put_item(self, group: str, key: str, head: str,
                        fields: dict[str, str]) -> None:
        """Copy one item (its head and the field hashes named in ``fields``, field -> key)
        to its shard, then delete the copied field hashes (the caller drops the head)."""
        shard = self._shard(group, key)
        for f, old in fields.items():
            new = constants.state_field_key(self.app, group, key, f, self.space, shard)
            entries = await self.r.hgetall(old)
            if new == old or not entries:
                # Not moved, or moved already by a move cut short before its head was (a
                # field hash is never kept empty).
                continue
            await self.r.delete(new)
            await self.r.hset(new, mapping=entries)
            await self.r.delete(old)
        await self.r.hset(constants.state_group_key(self.app, group, self.space, shard),
                          key, head)
        await self.r.sadd(constants.state_groups_key(self.app, self.space, shard), group)

    async def _put_record(self, owner: str, effect: str, raw: str,
                          everywhere: Sequence[int]) -> list[int]:
        """Copy an effect record to the shard of the item it names, else to ``everywhere``;
        the shards it went to."""
        record = json.loads(raw)
        at = record.get("at") if isinstance(record, dict) else None
        shards = [self._shard(*at)] if at else list(everywhere)
        for shard in shards:
            ekey = constants.effect_key(self.app, effect, self.space, shard)
            await self.r.set(ekey, raw)
            await self.r.sadd(constants.owned_effects_key(self.app, owner, self.space, shard),
                              ekey)
            await self.r.sadd(constants.effect_owners_key(self.app, self.space, shard), owner)
        return shards

    # --- layout 3 for another number of shards ------------------------------------------------
    async def _reshard(self, shard: int, keep: bool) -> None:
        """Move what shard ``shard`` of the old count holds to the shards that own it now;
        ``keep``: the shard still exists (what it still owns stays)."""
        app, space = self.app, self.space
        groups_key = constants.state_groups_key(app, space, shard)
        for group in sorted(await self.r.smembers(groups_key)):
            old_hash = constants.state_group_key(app, group, space, shard)
            for key, head in (await self.r.hgetall(old_hash)).items():
                if keep and self._shard(group, key) == shard:
                    continue
                fields = {f: constants.state_field_key(app, group, key, f, space, shard)
                          for f in json.loads(head)["s"]}
                await self._put_item(group, key, head, fields)
                await self.r.hdel(old_hash, key)
            if not await self.r.hlen(old_hash):
                await self.r.srem(groups_key, group)
        owners_key = constants.effect_owners_key(app, space, shard)
        prefix = constants.effect_key(app, "", space, shard)
        for owner in sorted(await self.r.smembers(owners_key)):
            owned = constants.owned_effects_key(app, owner, space, shard)
            for ekey in sorted(await self.r.smembers(owned)):
                raw = await self.r.get(ekey)
                went = [] if raw is None else await self._put_record(
                    owner, ekey[len(prefix):], raw, range(self.shards))
                if not (keep and shard in went):
                    await self.r.delete(ekey)
                    await self.r.srem(owned, ekey)
            if not await self.r.scard(owned):
                await self.r.srem(owners_key, owner)
        if not keep:
            await self.r.delete(groups_key, owners_key)


async def _fields_to_v2(client: Any, app: str, space: str) -> None:
    """Layout 1's field keys renamed to layout 2's (then moved on with their items)."""
    prefix = V2Keys.fields_prefix(app, space)
    async for key in client.scan_iter(match=glob_escape(prefix) + "*\x1f*", count=1000):
        parts = key[len(prefix):].split("\x1f")
        if len(parts) != 3:
            raise StateLayoutError(
                key, f"it was written in layout 1, and its {len(parts) - 1} separators do not "
                "say which are the group's, the item's and the field's; delete it "
                "(redis-cli DEL) or move it by hand")
        group, item, field = parts
        new = f"{prefix}{len(group)}:{group}:{len(item)}:{item}:{field}"
        # RENAMENX: a key already written in layout 2 is newer than the old one.
        if not await client.renamenx(key, new):
            await client.delete(key)


class LayoutGate:
    """Runs :func:`ensure_layout` once, then ``then()`` (the backend's own start), before the
    first read or write of a backend."""

    def __init__(self, client: Any, app: str, space: str, shards: int,
                 then: Callable[[], Awaitable[None]]) -> None:
        self._args = (client, app, space, shards)
        self._then = then
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    async def _open(self) -> None:
        await ensure_layout(*self._args)
        await self._then()

    async def wait(self) -> None:
        if self._task is None or (self._task.done() and self._task.exception() is not None):
            self._task = asyncio.ensure_future(self._open())
        await asyncio.shield(self._task)
        self.ready = True
