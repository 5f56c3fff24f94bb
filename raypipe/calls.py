"""How a handler's calls into ``ctx`` (state, streams, enqueue) run, whatever the handler's style.

- Awaited in an ``async def`` handler: the call runs then and there.
- Left un-awaited (Motia 0.x Python scheduled such calls): it runs when the handler returns,
  in call order, before the delivery or request counts as done. Its error fails the delivery.
- Made from a plain ``def`` handler (run in a thread, as in Motia 1.x's synchronous SDK): the
  call runs on the delivery's event loop and its result is returned, no ``await`` needed.

The handler's context is also the *current* context while it runs, for Motia 1.x's
module-level ``enqueue``, ``logger``, ``stateManager`` and ``Stream`` objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
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

    __slots__ = ("_coro", "awaited")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self.awaited = False

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

    def run(self, coro: Coroutine[Any, Any, T]) -> Any:
        """``coro`` as a :class:`Call` on the loop, or its result when called from another
        thread (a plain ``def`` handler's)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self.loop is None or self.loop.is_closed():
                coro.close()
                raise UsageError("ctx was used outside the handler's run") from None
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        call = Call(coro)
        self._made.append(call)
        return call

    async def settle(self) -> None:
        """Run the calls that were never awaited, in the order they were made."""
        while self._made:
            made, self._made = self._made, []
            for call in made:
                if not call.awaited:
                    await call.run()

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
        return self._calls.run(fn(self, *args, **kwargs))

    return call
