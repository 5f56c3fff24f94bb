"""Running one delivery of a non-HTTP trigger: build the handler's input, check the trigger's
condition, call the handler with a fresh context. Ray-free: a Ray task runs it in a worker
(:mod:`raypipe.runtime.worker`), :mod:`raypipe.testing` in-process."""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

from raypipe import trigger_kind
from raypipe.app import App
from raypipe.context import FlowContext
from raypipe.engine.delivery import Delivery
from raypipe.errors import UsageError
from raypipe.handlers import call_handler, instance, invoke
from raypipe.runtime_protocols import Runtime, TelemetrySink

__all__ = ["Outcome", "execute", "run_batch", "run_one"]

#: A run's outcome: ``None`` when it succeeded, else ``{"error", "traceback", "cause"}``
#: (:func:`raypipe.engine.attempt.outcome_error` makes it the engine's AttemptError).
Outcome = dict[str, str] | None


async def _prepare(app: App, runtime: Runtime, d: Delivery
                   ) -> tuple[Any, FlowContext] | None:
    """A delivery's input and context, or ``None`` when its condition says skip. The change
    kinds' conditions were checked where the change happened."""
    step = app.steps[d.step]
    kind = trigger_kind.get(d.kind)
    value, trigger = kind.handler_input(step, d)
    ctx = FlowContext(app, runtime, step=step, trace_id=d.trace_id, trigger=trigger,
                      message_id=d.message_id, delivery_id=d.id, attempt=d.attempt)
    ctx.input_value = value
    if kind.condition_at_run:
        try:
            if not await trigger_kind.check_condition(trigger.condition, value, ctx):
                return None
        except Exception as exc:
            # A broken condition is the step's bug, not the message's: it must not be retried
            # into the dead-letter queue, nor run the handler.
            ctx.logger.error("trigger condition raised; treated as false",
                             error=f"{type(exc).__name__}: {exc}")
            return None
    return value, ctx


async def execute(app: App, runtime: Runtime, d: Delivery) -> dict[str, Any]:
    """Run the delivery; returns ``{"status": "done" | "skipped"}``. Handler errors propagate:
    retrying them is the dispatcher's business."""
    prepared = await _prepare(app, runtime, d)
    if prepared is None:
        return {"status": "skipped"}
    value, ctx = prepared
    await call_handler(instance(app.steps[d.step].handler), value, ctx)
    return {"status": "done"}


async def run_batch(app: App, rt: Runtime, deliveries: list[Delivery]) -> list[Outcome]:
    """Deliveries of one step whose class handler takes batches (``RayOptions(batch=...)``):
    one ``__call__(inputs, ctxs)`` for all of them that pass their conditions; it returns one
    outcome per input, an exception failing that input's attempt alone. The handler raising
    fails them all."""
    started = time.time() * 1000
    outcomes: list[Outcome] = [None] * len(deliveries)
    try:
        step = app.steps[deliveries[0].step]
        prepared = [await _prepare(app, rt, d) for d in deliveries]
        kept = [i for i, p in enumerate(prepared) if p is not None]
        if kept:
            inputs = [prepared[i][0] for i in kept]  # type: ignore[index]
            ctxs = [prepared[i][1] for i in kept]  # type: ignore[index]
            try:
                results = await invoke(instance(step.handler), (inputs, ctxs))
                if not isinstance(results, (list, tuple)) or len(results) != len(kept):
                    raise UsageError(
                        f"step {step.name!r}: a batch handler returns one outcome per input "
                        f"({len(kept)}), got {type(results).__name__}"
                        + (f" of {len(results)}" if isinstance(results, (list, tuple))
                           else ""))
            except Exception as exc:
                for ctx in ctxs:
                    ctx.discard()
                failed = _failure(exc, f"{type(exc).__name__}: {exc}")
                for i in kept:
                    outcomes[i] = failed
                return outcomes
            settled = await asyncio.gather(*(c.settle() for c in ctxs), return_exceptions=True)
            for i, result, done in zip(kept, results, settled, strict=True):
                err = result if isinstance(result, BaseException) else (
                    done if isinstance(done, BaseException) else None)
                if err is not None:
                    outcomes[i] = _failure(err, f"{type(err).__name__}: {err}")
    finally:
        for d in deliveries:
            _ran(rt, d, started)
    return outcomes


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
