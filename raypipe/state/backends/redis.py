"""State in Redis: one hash per group (item id -> JSON), and a set of the group names.

Every write is a Redis transaction (WATCH/MULTI/EXEC, retried on conflict): the new value is
computed with the same ``apply_ops`` as the memory backend, and commits only if the item did
not change since it was read, so two writers can never interleave. Each write is acknowledged
only once Redis has it, so a restarted state actor finds every item.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from raypipe import constants
from raypipe.state.backend import Groups, Items, Removed, StateBackend
from raypipe.state.ops import apply_ops

__all__ = ["RedisBackend"]

#: How long a write's effect is remembered: retries come within minutes.
EFFECT_TTL_SECONDS = 3600


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


#: Connections one process keeps to Redis (redis-py's default limit).
MAX_CONNECTIONS = 100


def redis_client(url: str) -> Any:
    """An asyncio client whose pool waits for a free connection rather than failing: a batch
    of deliveries settles at once, and a few hundred concurrent writes raised redis-py's "Too
    many connections", which lost their deliveries' bookkeeping."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=60)
    return aioredis.Redis(connection_pool=pool)


class RedisBackend(StateBackend):
    def __init__(self, url: str, app: str, space: str = constants.STATE_SPACE) -> None:
        # Any: redis-py's stubs type every reply as bytes | str whatever decode_responses says.
        self._redis: Any = redis_client(url)
        self._groups_key = constants.state_groups_key(app, space)
        self._effect_key: Callable[[str], str] = lambda effect: constants.effect_key(app, effect)
        self._group_key: Callable[[str], str] = lambda group: constants.state_group_key(
            app, group, space)
        # Writes to one item from this process take turns (striped locks), so they neither
        # spin on WATCH conflicts nor hold a connection each while waiting; WATCH still
        # guards against writers in other processes.
        self._locks = [asyncio.Lock() for _ in range(64)]

    async def get(self, group: str, key: str) -> Any:
        return _loads(await self._redis.hget(self._group_key(group), key))

    async def _write(self, group: str, key: str, effect: str | None,
                     compute: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Read the item, compute its new value (``None`` deletes it), commit atomically,
        together with the record of ``effect`` (so its repeat returns this result)."""
        hkey = self._group_key(group)
        ekey = self._effect_key(effect) if effect else None
        async with self._locks[hash((group, key)) % len(self._locks)], self._redis.pipeline(
                transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hkey, *([ekey] if ekey else []))
                    if ekey:
                        done = await pipe.get(ekey)
                        if done is not None:
                            await pipe.reset()
                            old, new = json.loads(done)
                            return old, new
                    old = _loads(await pipe.hget(hkey, key))
                    new = compute(old)
                    pipe.multi()
                    if new is None:
                        pipe.hdel(hkey, key)
                    else:
                        pipe.hset(hkey, key, _dumps(new))
                        pipe.sadd(self._groups_key, group)
                    if ekey:
                        pipe.set(ekey, _dumps([old, new]), ex=EFFECT_TTL_SECONDS)
                    await pipe.execute()
                    return old, new
                except WatchError:
                    continue  # another writer got there first: read again

    async def set(
        self, group: str, key: str, value: Any, effect: str | None = None
    ) -> tuple[Any, Any]:
        return await self._write(group, key, effect, lambda _old: value)

    async def update(
        self, group: str, key: str, ops: Sequence[dict[str, Any]], effect: str | None = None
    ) -> tuple[Any, Any]:
        return await self._write(group, key, effect, lambda old: apply_ops(old, ops))

    async def delete(self, group: str, key: str, effect: str | None = None) -> Any:
        old, _ = await self._write(group, key, effect, lambda _old: None)
        if not await self._redis.hlen(self._group_key(group)):
            await self._redis.srem(self._groups_key, group)
        return old

    async def applied(self, effect: str) -> tuple[Any, Any] | None:
        first = _loads(await self._redis.get(self._effect_key(effect)))
        return (first[0], first[1]) if isinstance(first, list) and len(first) == 2 else None

    async def list(self, group: str) -> Items:
        raw = await self._redis.hgetall(self._group_key(group))
        items = {k: _loads(v) for k, v in raw.items()}
        return [{"id": k, "data": items[k]} for k in sorted(items)]

    async def list_groups(self) -> Groups:
        groups = sorted(await self._redis.smembers(self._groups_key))
        # A group emptied by a concurrent delete may linger in the set for an instant.
        return [g for g in groups if await self._redis.hlen(self._group_key(g))]

    async def clear(self, group: str, effect: str | None = None) -> Removed:
        hkey = self._group_key(group)
        ekey = self._effect_key(effect) if effect else None
        if ekey and await self._redis.exists(ekey):
            return []
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hkey)
                    raw = await pipe.hgetall(hkey)
                    pipe.multi()
                    pipe.delete(hkey)
                    pipe.srem(self._groups_key, group)
                    if ekey:
                        pipe.set(ekey, "[]", ex=EFFECT_TTL_SECONDS)
                    await pipe.execute()
                    return sorted((k, _loads(v)) for k, v in raw.items())
                except WatchError:
                    continue

    async def close(self) -> None:
        await self._redis.aclose()
