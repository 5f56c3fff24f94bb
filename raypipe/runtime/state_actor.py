"""The state actor: owns the backend, applies every write atomically, and turns each committed
change into state-trigger deliveries, in commit order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from raypipe import triggers as t
from raypipe.context import Origin
from raypipe.effects import EffectLog
from raypipe.loader import load_app_cached
from raypipe.models import EventType, StateTriggerInput
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.triggering import ChangeTriggers
from raypipe.state.backend import Groups, Items, Ops, make_backend

log = logging.getLogger("raypipe.state")


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class StateActor:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.app = load_app_cached(spec.root, spec.settings)
        self.backend = make_backend(spec.settings.state, spec.settings.name)
        self.effects = EffectLog()
        self.triggers = ChangeTriggers(spec, self.app, "state", t.StateTrigger, _state_matches)

    async def ready(self) -> bool:
        return True

    # --- the StateStore protocol ------------------------------------------------------------
    async def get(self, group: str, key: str) -> Any:
        return await self.backend.get(group, key)

    async def set(self, group: str, key: str, value: Any, origin: Origin) -> tuple[Any, Any]:
        return await self._write(group, key, origin, lambda: self.backend.set(group, key, value))

    async def update(self, group: str, key: str, ops: Ops, origin: Origin) -> tuple[Any, Any]:
        return await self._write(group, key, origin, lambda: self.backend.update(group, key, ops))

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        async def delete() -> tuple[Any, Any]:
            return await self.backend.delete(group, key), None

        old, _ = await self._write(group, key, origin, delete)
        return old

    async def _write(self, group: str, key: str, origin: Origin,
                     write: Callable[[], Awaitable[tuple[Any, Any]]]) -> tuple[Any, Any]:
        # A write whose effect was already applied (its delivery is being retried) returns the
        # first result and changes nothing, so it fires no trigger either.
        if self.effects.seen(origin.effect):
            return self.effects.result(origin.effect)  # type: ignore[arg-type,no-any-return]
        old, new = await write()
        self._committed(group, key, old, new, origin)
        self.effects.record(origin.effect, (old, new))
        return old, new

    async def list(self, group: str) -> Items:
        return await self.backend.list(group)

    async def list_groups(self) -> Groups:
        return await self.backend.list_groups()

    async def clear(self, group: str, origin: Origin) -> None:
        if self.effects.seen(origin.effect):
            return
        for key, old in await self.backend.clear(group):
            self._committed(group, key, old, None, origin)
        self.effects.record(origin.effect)

    def _committed(self, group: str, key: str, old: Any, new: Any, origin: Origin) -> None:
        # A write that changes nothing is not a change: no trigger fires for it.
        if old == new:
            return
        event: EventType = "created" if old is None else "deleted" if new is None else "updated"
        self.triggers.push(StateTriggerInput(group, key, old, new, event), origin)


def _state_matches(tr: t.StateTrigger, change: StateTriggerInput) -> bool:
    return tr.group_id is None or tr.group_id == change.group_id
