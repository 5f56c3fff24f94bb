"""One attempt of a delivery, as the engine sees it: who runs it (an :class:`Executor`), and
how it failed (:class:`AttemptError`)."""

from __future__ import annotations

import traceback
from typing import Literal, Protocol

from raypipe.engine.delivery import Delivery
from raypipe.steps import Step
from raypipe.trigger_kinds.queue import QueueConfig

__all__ = ["AttemptError", "Cause", "Executor", "describe", "outcome_error"]

#: ``error``: the handler raised; ``crash``: its worker process died (an exit, a signal, OOM,
#: a lost node); ``timeout``: it ran past its ``visibility_timeout`` and was stopped.
Cause = Literal["error", "crash", "timeout"]


class AttemptError(Exception):
    """An attempt that failed, with what the dead letter shows of it."""

    def __init__(self, description: str, remote_traceback: str = "",
                 cause: Cause = "error") -> None:
        super().__init__(description)
        self.description = description
        self.remote_traceback = remote_traceback
        self.cause: Cause = cause


class Executor(Protocol):
    async def run(self, step: Step, delivery: Delivery, cfg: QueueConfig, *,
                  alone: bool) -> None:
        """Run one attempt; return when it succeeded, raise when it failed (preferably an
        :class:`AttemptError`). ``alone``: not in a batch with other deliveries (the attempt
        before this one crashed its worker, which must not take others down twice).

        An executor may also offer ``start_many(step, deliveries, cfg)``, returning a future
        per delivery, for first attempts made ready together; the engine runs them through
        ``run`` otherwise."""


def describe(exc: BaseException) -> AttemptError:
    """``exc`` as an :class:`AttemptError` (unchanged if it is one)."""
    if isinstance(exc, AttemptError):
        return exc
    return AttemptError(f"{type(exc).__name__}: {exc}",
                        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def outcome_error(outcome: dict[str, str]) -> AttemptError:
    """A failed run's outcome (``{"error", "traceback", "cause"}``, as a worker answers it)
    as an :class:`AttemptError`."""
    cause = outcome.get("cause", "error")
    return AttemptError(outcome["error"], outcome["traceback"],
                        "crash" if cause == "crash" else "error")
