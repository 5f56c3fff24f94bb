"""How a handler's calls into ``ctx`` (state, streams, enqueue) run, whatever the handler's style.

- Awaited in an ``async def`` handler: the call runs then and there.
- Left un-awaited (Motia 0.x Python scheduled such calls): it runs when the handler returns,
  in call order, before the delivery or request counts as done. Its error fails the delivery.
  Consecutive calls to one target (``ctx.enqueue`` s, ``ctx.state`` calls, ``ctx.streams``
  calls) start together: they reach that target in one actor call (per thousand), which
  applies them in the order they were made, instead of a round trip each (and, from the
  concurrent deliveries of a batch, one message of each delivery per call, interleaved).
- Made from a plain ``def`` handler (run in a thread, as in Motia 1.x's synchronous SDK): the
  call runs on the delivery's event loop and its result is returned, no ``await`` needed.

The handler's context is also the *current* context while it runs, for Motia 1.x's
module-level ``enqueue``, ``logger``, ``stateManager`` and ``Stream`` objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from raypipe.errors import UsageError

__all__ = ["Call", "Calls", "current", "scheduled"]

T = TypeVar("T")

#: The context of the handler running in this task or thread (``None`` outside handlers).
current: contextvars.ContextVar[Any] = contextvars.ContextVar("raypipe_current_context",
                                                            default=None)


class Call(Awaitable[T]):
    """A call made on the delivery's loop: awaitable once; run at the end if never awaited."""

    __slots__ = ("_coro", "awaited", "target")

    def __init__(self, coro: Coroutine[Any, Any, T], target: str = "") -> None:
        self._coro = coro
        self.awaited = False
        #: What the call goes to; consecutive un-awaited calls to one target start together.
        self.target = target

    def __await__(self) -> Generator[Any, None, T]:
        self.awaited = True
        return self._coro.__await__()

    async def run(self) -> T:
        self.awaited = True
        return await self._coro

    def close(self) -> None:
        self._coro.close()


class Calls:
    """The calls of one handler run (one context)."""

    def __init__(self) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self._made: list[Call[Any]] = []

    def run(self, coro: Coroutine[Any, Any, T], target: str = "") -> Any:
        """``coro`` as a :class:`Call` on the loop, or its result when called from another
        thread (a plain ``def`` handler's)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self.loop is None or self.loop.is_closed():
                coro.close()
                raise UsageError("ctx was used outside the handler's run") from None
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        call = Call(coro, target)
        self._made.append(call)
        return call

    async def settle(self) -> None:
        """Run the calls that were never awaited, in the order they were made: each run of
        consecutive calls to one target together, the next run once it is done. The first
        error is raised once its run is done; the runs after it do not start (the caller
        discards them)."""
        while self._made:
            made, self._made = self._made, []
            pending = [call for call in made if not call.awaited]
            for _, run in itertools.groupby(pending, key=lambda call: call.target):
                calls = list(run)
                results = await asyncio.gather(*(call.run() for call in calls),
                                               return_exceptions=True)
                failed = next((r for r in results if isinstance(r, BaseException)), None)
                if failed is not None:
                    self._made = [c for c in pending if not c.awaited] + self._made
                    raise failed

    def discard(self) -> None:
        """After a handler failed: its un-awaited calls are dropped with it (a retry makes
        them again)."""
        made, self._made = self._made, []
        for call in made:
            if not call.awaited:
                call.close()


def scheduled(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """An ``async def`` method of an object with a ``_calls`` attribute, run through it."""

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._calls.run(fn(self, *args, **kwargs), type(self).__name__)

    return call
