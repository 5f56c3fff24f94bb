"""Change-driven triggers (state and stream): conditions are evaluated for each committed
change in commit order, inside the actor that committed it, and matching steps get a
delivery from the dispatcher like any other."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import ray

from raypipe import constants
from raypipe import triggers as t
from raypipe.app import App
from raypipe.context import FlowContext, Origin
from raypipe.delivery import Delivery, Kind
from raypipe.messages import new_id
from raypipe.runtime.spec import AppSpec
from raypipe.steps import Step

log = logging.getLogger("raypipe.triggers")

Watcher = tuple[Step, Any]

#: Seconds to wait for the dispatcher to accept a trigger's delivery.
INVOKE_TIMEOUT = 30.0


class ChangeTriggers:
    def __init__(self, spec: AppSpec, app: App, kind: Kind, trigger_type: type[t.Trigger],
                 matches: Callable[[Any, Any], bool]) -> None:
        self.spec = spec
        self.app = app
        self.kind = kind
        self.matches = matches
        self.watchers: list[Watcher] = [(step, tr) for step in app.with_trigger(trigger_type)
                                        for tr in step.triggers_of(trigger_type)]
        self._dispatcher: Any = None
        # FIFO, and taken without a turn of the loop when free: changes are evaluated in
        # commit order, and a write whose change no one else is evaluating does not wait for
        # the loop. (A queue with a runner task cost two turns per write; with a busy loop that
        # made a batch of 32 writes take 100 ms or more.)
        self._order = asyncio.Lock()

    async def fire(self, change: Any, origin: Origin) -> None:
        """Evaluate the triggers of a committed change and hand their deliveries to the
        dispatcher; returns once that is done. The write that made the change answers only
        after this, so an actor lost in between loses no trigger: the writer's delivery is
        retried, its write repeats (changing nothing), and the trigger fires from the repeat
        (the dispatcher drops the delivery if the first firing got through). An error here
        (the dispatcher unreachable or restarting) fails the write, which is then retried."""
        if not self.watchers:
            return
        async with self._order:
            await self._evaluate(change, origin)

    async def _evaluate(self, change: Any, origin: Origin) -> None:
        # One change at a time, in commit order.
        for step, tr in self.watchers:
            if not self.matches(tr, change):
                continue
            try:
                # A context costs a few objects: made only for conditions that take one.
                ctx = self._ctx(step, origin) if tr.condition and t.wants_ctx(
                    tr.condition) else None
                ok = await t.check_condition(tr.condition, change, ctx)
            except Exception:
                # A broken condition must not stop the actor or the other triggers.
                log.exception("%s trigger condition of step %r raised; treated as false",
                              self.kind, step.name)
                continue
            if ok:
                # Named after the change's effect when it has one, so the same change can
                # never start two deliveries of one step.
                effect = origin.effect
                cause = effect.id if effect else new_id()
                await self._invoke(Delivery(f"{cause}>{step.name}", step.name, self.kind,
                                            dataclasses.asdict(change), origin.trace_id,
                                            parent=effect.owner if effect else None))

    def _ctx(self, step: Step, origin: Origin) -> FlowContext:
        from raypipe.runtime.bridge import runtime_for

        return FlowContext(self.app, runtime_for(self.spec), step=step, trace_id=origin.trace_id)

    async def _invoke(self, delivery: Delivery) -> None:
        if self._dispatcher is None:
            self._dispatcher = ray.get_actor(constants.DISPATCHER_ACTOR,
                                             namespace=self.spec.namespace)
        try:
            # Bounded: a call lost with a dying dispatcher must fail (the writer then retries),
            # not hold every later change of this actor.
            await asyncio.wait_for(self._dispatcher.invoke.remote([delivery]), INVOKE_TIMEOUT)
        except Exception:
            self._dispatcher = None  # look the actor up again next time
            raise
