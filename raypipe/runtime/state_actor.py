"""The state actor: owns the backend, applies every write atomically, and turns each committed
change into state-trigger deliveries, in commit order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from raypipe import triggers as t
from raypipe.context import Origin
from raypipe.effects import Effect
from raypipe.models import EventType, StateTriggerInput
from raypipe.runtime import registry, shipping
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.triggering import ChangeTriggers
from raypipe.state.backend import Groups, Items, Ops, make_backend
from raypipe.state.change import DEFERRED, Deferred, is_large

log = logging.getLogger("raypipe.state")


# max_task_retries: a call in flight when the actor dies is retried once it is back; writes
# are idempotent by their effect id.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class StateActor:
    def __init__(self, spec: AppSpec) -> None:
        spec = self.spec = registry.current(spec)
        self.app = shipping.load(spec)
        self.backend = make_backend(spec.settings.state, spec.settings.name)
        self.triggers = ChangeTriggers(spec, self.app, "state", t.StateTrigger, _state_matches)

    async def ready(self) -> bool:
        return True

    async def reload(self, spec: AppSpec) -> str:
        """A redeploy: the new version's state triggers; the backend (the same, a deploy
        checked) and its items stay."""
        app = shipping.load(spec)  # first: a version that fails to load changes nothing
        self.spec, self.app = spec, app
        self.triggers = ChangeTriggers(spec, app, "state", t.StateTrigger, _state_matches)
        return spec.version

    async def ping(self) -> bool:
        """Whether the backend answers (the health route asks)."""
        await self.backend.list_groups()
        return True

    async def release(self, owners: list[str]) -> None:
        """These deliveries settled: their effect records may go."""
        await self.backend.release(owners)

    async def batch(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
        """Several calls from one process in one actor call; each answers ``(True, result)``
        or ``(False, exception)`` on its own. They were made concurrently, and run so: started
        in the order they were made, so writes to one item apply in that order, and the Redis
        backend commits a batch's writes to one item together instead of one by one."""
        async def one(method: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
            if method not in _BATCHED:
                return False, ValueError(f"{method!r} cannot be batched")
            try:
                return True, await getattr(self, method)(*args)
            except Exception as exc:
                return False, exc

        return list(await asyncio.gather(*(one(m, a) for m, a in calls)))

    # --- the StateStore protocol ------------------------------------------------------------
    async def get(self, group: str, key: str) -> Any:
        return await self.backend.get(group, key)

    # A write whose effect was already applied (a retried delivery repeating it) changes
    # nothing: the backend returns the first result. Triggers see it again, but the trigger
    # delivery is named after the effect, so the dispatcher does not run it twice.
    async def set(self, group: str, key: str, value: Any, origin: Origin) -> Answer:
        old, new = await self.backend.set(group, key, value, origin.effect)
        await self._committed(group, key, old, new, origin)
        return _answer(old, new, origin)

    async def update(self, group: str, key: str, ops: Ops, origin: Origin) -> Answer:
        old, new = await self.backend.update(group, key, ops, origin.effect)
        await self._committed(group, key, old, new, origin)
        return _answer(old, new, origin)

    async def applied(self, effect: Effect) -> tuple[Any, Any]:
        """The values a delivery's write left (see :class:`~raypipe.state.change.Deferred`)."""
        first = await self.backend.applied(effect)
        if first is None:
            raise LookupError("this write's values are gone: its delivery has settled")
        return first

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        old = await self.backend.delete(group, key, origin.effect)
        await self._committed(group, key, old, None, origin)
        return old

    async def list(self, group: str) -> Items:
        return await self.backend.list(group)

    async def list_groups(self) -> Groups:
        return await self.backend.list_groups()

    async def clear(self, group: str, origin: Origin) -> None:
        for key, old in await self.backend.clear(group, origin.effect):
            await self._committed(group, key, old, None, origin)

    async def _committed(self, group: str, key: str, old: Any, new: Any,
                         origin: Origin) -> None:
        # A write that changes nothing is not a change: no trigger fires for it.
        if old == new:
            return
        event: EventType = "created" if old is None else "deleted" if new is None else "updated"
        await self.triggers.fire(StateTriggerInput(group, key, old, new, event), origin)


_BATCHED = frozenset({"get", "set", "update", "delete"})

Answer = tuple[Any, Any] | Deferred

def _answer(old: Any, new: Any, origin: Origin) -> Answer:
    """``(old, new)``, or for a large item written by a delivery, :data:`DEFERRED`: a write
    to one field of a big item then costs its path, not the item's size, unless the handler
    reads what it returned."""
    if origin.effect is not None and is_large(old, new):
        return DEFERRED
    return old, new


def _state_matches(tr: t.StateTrigger, change: StateTriggerInput) -> bool:
    return tr.group_id is None or tr.group_id == change.group_id
