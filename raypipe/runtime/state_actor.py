"""The state actor: owns the backend, applies every write atomically, and turns each committed
change into state-trigger deliveries, in commit order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from raypipe import constants
from raypipe import triggers as t
from raypipe.context import FlowContext, Origin
from raypipe.delivery import Delivery
from raypipe.effects import EffectLog
from raypipe.loader import load_app_cached
from raypipe.messages import new_id
from raypipe.models import EventType, StateTriggerInput
from raypipe.runtime.spec import AppSpec
from raypipe.state.backend import Groups, Items, Ops, make_backend

log = logging.getLogger("raypipe.state")


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class StateActor:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.app = load_app_cached(spec.root, spec.settings)
        self.backend = make_backend(spec.settings.state)
        self.watchers = [
            (step, tr) for step in self.app.with_trigger(t.StateTrigger)
            for tr in step.triggers_of(t.StateTrigger)
        ]
        self.effects = EffectLog()
        self._changes: asyncio.Queue[tuple[StateTriggerInput, Origin]] | None = None
        self._dispatcher: Any = None

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

    # --- state triggers ---------------------------------------------------------------------
    def _committed(self, group: str, key: str, old: Any, new: Any, origin: Origin) -> None:
        # A write that changes nothing is not a change: no trigger fires for it.
        if not self.watchers or old == new:
            return
        event: EventType = "created" if old is None else "deleted" if new is None else "updated"
        if self._changes is None:
            self._changes = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._fire_triggers())
        self._changes.put_nowait((StateTriggerInput(group, key, old, new, event), origin))

    async def _fire_triggers(self) -> None:
        assert self._changes is not None
        while True:
            change, origin = await self._changes.get()
            for step, tr in self.watchers:
                if tr.group_id is not None and tr.group_id != change.group_id:
                    continue
                try:
                    ok = await t.check_condition(tr.condition, change, self._ctx(step, origin))
                except Exception:
                    # A broken condition must not stop the actor or the other triggers.
                    log.exception("state trigger condition of step %r raised; treated as false",
                                  step.name)
                    continue
                if ok:
                    # Named after the change's effect when it has one, so that the same
                    # change can never start two deliveries of one step.
                    cause = origin.effect or new_id()
                    await self._invoke(Delivery(f"{cause}>{step.name}", step.name, "state",
                                                change.to_dict(), origin.trace_id))

    def _ctx(self, step: Any, origin: Origin) -> FlowContext:
        from raypipe.runtime.bridge import runtime_for

        return FlowContext(self.app, runtime_for(self.spec), step=step, trace_id=origin.trace_id)

    async def _invoke(self, delivery: Delivery) -> None:
        if self._dispatcher is None:
            self._dispatcher = ray.get_actor(constants.DISPATCHER_ACTOR,
                                             namespace=self.spec.namespace)
        await self._dispatcher.invoke.remote([delivery])
