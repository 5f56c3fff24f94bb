"""Running one delivery of a non-HTTP trigger: build the handler's input, check the trigger's
condition, call the handler with a fresh context. Ray-free: a Ray task runs it in a worker
(:mod:`raypipe.runtime.worker`), :mod:`raypipe.testing` in-process."""

from __future__ import annotations

import time
import traceback
from typing import Any

from raypipe import trigger_kind
from raypipe.app import App
from raypipe.context import FlowContext
from raypipe.engine.delivery import Delivery
from raypipe.handlers import call_handler
from raypipe.runtime_protocols import Runtime, TelemetrySink

__all__ = ["Outcome", "execute", "run_one"]

#: A run's outcome: ``None`` when it succeeded, else ``{"error", "traceback", "cause"}``
#: (:func:`raypipe.engine.attempt.outcome_error` makes it the engine's AttemptError).
Outcome = dict[str, str] | None


async def execute(app: App, runtime: Runtime, d: Delivery) -> dict[str, Any]:
    """Run the delivery; returns ``{"status": "done" | "skipped"}``. Handler errors propagate:
    retrying them is the dispatcher's business."""
    step = app.steps[d.step]
    kind = trigger_kind.get(d.kind)
    value, trigger = kind.handler_input(step, d)
    ctx = FlowContext(app, runtime, step=step, trace_id=d.trace_id, trigger=trigger,
                      message_id=d.message_id, delivery_id=d.id, attempt=d.attempt)
    # The change kinds' conditions were checked where the change happened.
    if kind.condition_at_run:
        try:
            ok = await trigger_kind.check_condition(trigger.condition, value, ctx)
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


def _failure(exc: BaseException, description: str, cause: str = "error") -> dict[str, str]:
    return {"error": description, "cause": cause,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


async def run_one(app: App, rt: Runtime, d: Delivery) -> Outcome:
    """:func:`execute` as one attempt's outcome. A handler that calls ``sys.exit`` fails its
    attempt with the exit code named (cause ``crash``) and leaves the process, and the
    deliveries sharing it, running."""
    started = time.time() * 1000
    try:
        await execute(app, rt, d)
    except SystemExit as exc:
        # Caught here: out of a coroutine, SystemExit stops the whole loop (and the batch).
        return _failure(exc, f"SystemExit: the handler exited with code {exc.code!r} "
                             "(sys.exit); the attempt failed, the process was kept", "crash")
    except Exception as exc:
        return _failure(exc, f"{type(exc).__name__}: {exc}")
    finally:
        _ran(rt, d, started)
    return None


def _ran(rt: Runtime, d: Delivery, started: float) -> None:
    """When the handler itself ran, added to the attempt's span: the span's own start and
    end (the engine's) include the wait for a worker."""
    sink: TelemetrySink | None = getattr(rt, "telemetry", None)
    if sink is not None:
        sink.record((), [{"trace_id": d.trace_id, "id": d.id, "attempt": d.attempt,
                          "run_start": started, "run_end": time.time() * 1000}])
