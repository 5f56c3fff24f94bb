"""Change-driven triggers (state and stream), Ray-free: conditions are evaluated for each
committed change in commit order, where the change was committed (the state or streams
actor, or an in-process test runtime), and each matching step's delivery is handed to the
host's ``invoke`` (the dispatcher) like any other."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from copy import deepcopy
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
#: What :meth:`ChangeTriggers.evaluate` found a change fires: per step, its delivery's input
#: and the condition's result still to await (``None`` when it said yes already; else the
#: input is the change, made a delivery's input if the condition says yes).
Fired = list[tuple[Step, trigger_kind.KindSpec, Any, Awaitable[Any] | None]]


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
        # FIFO, and taken without a turn of the loop when free: changes' deliveries go in
        # commit order, and a write whose change no one else is dispatching does not wait for
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
        await self.dispatch(self.evaluate(change, origin), origin)

    def evaluate(self, change: Any, origin: Origin) -> Fired:
        """What a change fires, decided at once: synchronous conditions run and the
        deliveries' inputs are copied before this returns, so ``change`` may carry an item's
        live values (an item updated in place, :mod:`raypipe.state.in_place`) provided
        nothing writes the item before this is called. An ``async def`` condition gets a
        copy of the change, as it runs later, in :meth:`dispatch`."""
        fired: Fired = []
        copy: Any = None
        for step, tr, kind in self.watchers:
            if not kind.matches(tr, change):
                continue
            condition = tr.condition
            seen = change
            if condition is not None and inspect.iscoroutinefunction(condition):
                if copy is None:
                    copy = deepcopy(change)
                seen = copy
            try:
                result = True if condition is None else (
                    condition(seen, self._context(step, origin)) if trigger_kind.wants_ctx(
                        condition) else condition(seen))
            except Exception:
                _condition_failed(kind, step)
                continue
            if inspect.isawaitable(result):
                # A copy already (or a change that is never changed in place): its delivery's
                # input is made only if the condition says yes.
                fired.append((step, kind, seen if seen is copy else deepcopy(seen), result))
            elif result:
                fired.append((step, kind, dataclasses.asdict(seen), None))
        return fired

    async def dispatch(self, fired: Fired, origin: Origin) -> None:
        """Hand the deliveries of :meth:`evaluate` to the engine (awaiting the conditions
        left pending first), one change's after another's in the order they were
        evaluated."""
        if not fired:
            return
        async with self._order:
            try:
                await self._dispatch(fired, origin)
            finally:
                for *_, pending in fired:  # those a failed invoke left un-awaited
                    if inspect.iscoroutine(pending) and pending.cr_frame is not None:
                        pending.close()

    async def _dispatch(self, fired: Fired, origin: Origin) -> None:
        for step, kind, payload, pending in fired:
            if pending is not None:
                try:
                    if not await pending:
                        continue
                except Exception:
                    _condition_failed(kind, step)
                    continue
                payload = dataclasses.asdict(payload)
            # Named after the change's effect when it has one, so the same change can
            # never start two deliveries of one step.
            effect = origin.effect
            cause = effect.id if effect else new_id()
            await self._invoke(Delivery(f"{cause}>{step.name}", step.name, kind.kind,
                                        payload, origin.trace_id,
                                        parent=effect.owner if effect else None))


def _condition_failed(kind: trigger_kind.KindSpec, step: Step) -> None:
    # A broken condition must not stop the host or the other triggers.
    log.exception("%s trigger condition of step %r raised; treated as false", kind.kind,
                  step.name)
