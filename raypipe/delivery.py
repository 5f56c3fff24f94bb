"""Running one delivery of a non-HTTP trigger: build the handler's input, check the trigger's
condition, call the handler with a fresh context. Ray-free: the runtime calls it in a task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from raypipe import triggers as t
from raypipe.app import App
from raypipe.context import FlowContext, Runtime, call_handler
from raypipe.models import StateTriggerInput, StreamTriggerInput
from raypipe.steps import Step

__all__ = ["Delivery", "execute"]


Kind = Literal["queue", "cron", "state", "stream"]


@dataclass(frozen=True)
class Delivery:
    """One message (or event) for one step. Small and picklable: it is a Ray task argument.

    ``id`` names this delivery across all its runs: its attempts, a recovery after an outage
    and a replay from the dead letters. Its effects are deduplicated by it (they are
    :class:`~raypipe.effects.Effect` s owned by it). ``parent`` is the delivery whose effect
    caused this one (its enqueue, or its write that fired a trigger), ``None`` for work from
    outside (an HTTP request, a cron tick, the CLI). ``seq`` orders deliveries by acceptance,
    across restarts: FIFO groups resume in it."""

    id: str
    step: str
    kind: Kind
    payload: Any
    trace_id: str
    topic: str | None = None
    message_id: str | None = None
    group_id: str | None = None
    attempt: int = 1
    parent: str | None = None
    seq: int = 0


def _input_and_trigger(step: Step, d: Delivery) -> tuple[Any, t.Trigger]:
    if d.kind == "queue":
        assert d.topic is not None
        qt = step.queue_trigger(d.topic)
        if qt.input is None:
            return d.payload, qt
        return qt.input.validate(d.payload, what=f"message on {d.topic!r}"), qt
    if d.kind == "cron":
        return None, step.triggers_of(t.CronTrigger)[0]
    if d.kind == "state":
        return StateTriggerInput(**d.payload), step.triggers_of(t.StateTrigger)[0]
    return StreamTriggerInput.from_dict(d.payload), step.triggers_of(t.StreamTrigger)[0]


async def execute(app: App, runtime: Runtime, d: Delivery) -> dict[str, Any]:
    """Run the delivery; returns ``{"status": "done" | "skipped"}``. Handler errors propagate:
    retrying them is the dispatcher's business."""
    step = app.steps[d.step]
    value, trigger = _input_and_trigger(step, d)
    ctx = FlowContext(app, runtime, step=step, trace_id=d.trace_id, trigger=trigger,
                      message_id=d.message_id, delivery_id=d.id, attempt=d.attempt)
    # State and stream conditions were checked where the change happened.
    if d.kind in ("queue", "cron"):
        try:
            ok = await t.check_condition(trigger.condition, value, ctx)
        except Exception as exc:
            # A broken condition is the step's bug, not the message's: it must not be retried
            # into the dead-letter queue, nor run the handler.
            ctx.logger.error("trigger condition raised; treated as false",
                             error=f"{type(exc).__name__}: {exc}")
            return {"status": "skipped"}
        if not ok:
            return {"status": "skipped"}
    await call_handler(step.handler, value, ctx)
    return {"status": "done"}
