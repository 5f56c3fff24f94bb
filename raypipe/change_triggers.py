"""Change-driven triggers (state and stream), Ray-free: conditions are evaluated for each
committed change in commit order, where the change was committed (the state or streams
actor, or an in-process test runtime), and each matching step's delivery is handed to the
host's ``invoke`` (the dispatcher) like any other."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from raypipe import trigger_kind
from raypipe.app import App
from raypipe.context import FlowContext
from raypipe.engine.delivery import Delivery
from raypipe.messages import new_id
from raypipe.runtime_protocols import Origin
from raypipe.steps import Step

__all__ = ["ChangeTriggers", "Invoke", "MakeContext"]

log = logging.getLogger("raypipe.triggers")

Watcher = tuple[Step, Any, trigger_kind.KindSpec]
#: Hands a trigger's delivery to the engine; returns once it is accepted.
Invoke = Callable[[Delivery], Awaitable[None]]
#: A context for a condition that takes one.
MakeContext = Callable[[Step, Origin], FlowContext]


class ChangeTriggers:
    def __init__(self, app: App, source: trigger_kind.ChangeSource, *, invoke: Invoke,
                 context: MakeContext) -> None:
        """Watches the triggers of every kind that fires on ``source``'s changes (each kind's
        ``matches`` says which of its triggers a change concerns)."""
        self.app = app
        self.source = source
        self.watchers: list[Watcher] = [
            (step, tr, kind) for kind in trigger_kind.firing_on(source)
            for step in app.with_trigger(kind.trigger_type)
            for tr in step.triggers_of(kind.trigger_type)]
        self._invoke = invoke
        self._context = context
        # FIFO, and taken without a turn of the loop when free: changes are evaluated in
        # commit order, and a write whose change no one else is evaluating does not wait for
        # the loop. (A queue with a runner task cost two turns per write; with a busy loop that
        # made a batch of 32 writes take 100 ms or more.)
        self._order = asyncio.Lock()

    async def fire(self, change: Any, origin: Origin) -> None:
        """Evaluate the triggers of a committed change and hand their deliveries to the
        engine; returns once that is done. The write that made the change answers only after
        this, so a host lost in between loses no trigger: the writer's delivery is retried,
        its write repeats (changing nothing), and the trigger fires from the repeat (the
        engine drops the delivery if the first firing got through). An error here (the
        engine unreachable or restarting) fails the write, which is then retried."""
        if not self.watchers:
            return
        async with self._order:
            await self._evaluate(change, origin)

    async def _evaluate(self, change: Any, origin: Origin) -> None:
        # One change at a time, in commit order.
        for step, tr, kind in self.watchers:
            if not kind.matches(tr, change):
                continue
            try:
                # A context costs a few objects: made only for conditions that take one.
                ctx = self._context(step, origin) if tr.condition and trigger_kind.wants_ctx(
                    tr.condition) else None
                ok = await trigger_kind.check_condition(tr.condition, change, ctx)
            except Exception:
                # A broken condition must not stop the host or the other triggers.
                log.exception("%s trigger condition of step %r raised; treated as false",
                              kind.kind, step.name)
                continue
            if ok:
                # Named after the change's effect when it has one, so the same change can
                # never start two deliveries of one step.
                effect = origin.effect
                cause = effect.id if effect else new_id()
                await self._invoke(Delivery(f"{cause}>{step.name}", step.name, kind.kind,
                                            dataclasses.asdict(change), origin.trace_id,
                                            parent=effect.owner if effect else None))
