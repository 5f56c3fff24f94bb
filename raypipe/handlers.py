"""Calling a handler: with the arguments it takes, on the loop or in a thread, as the current
context."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raypipe.calls import current

if TYPE_CHECKING:
    from raypipe.context import FlowContext

__all__ = ["call_handler", "handler_args", "instance", "invoke"]

#: Class handlers made in this process, by class (a version's class is a class of its own).
_instances: dict[type, Any] = {}


def instance(handler: Any) -> Any:
    """What runs a step: its function, or, for a class handler, the one instance of it in
    this process (made on first use: a model is loaded once per worker or actor, not per
    delivery)."""
    if not inspect.isclass(handler):
        return handler
    made = _instances.get(handler)
    if made is None:
        made = _instances[handler] = handler()
    return made


async def invoke(fn: Callable[..., Any], args: tuple[Any, ...],
                 is_async: bool | None = None) -> Any:
    """``fn(*args)``: on this loop if it is async (``is_async``, asked of ``fn`` if not
    given), in a thread if it is a plain ``def`` (its ctx calls then return their results),
    its result awaited if it is awaitable."""
    if is_async is None:
        is_async = inspect.iscoroutinefunction(fn)
    if is_async:
        result = await fn(*args)
    else:
        # to_thread copies the contextvars: the thread sees the current context.
        result = await asyncio.to_thread(fn, *args)
    if result is not None and inspect.isawaitable(result):
        result = await result
    return result


def _handler_is_async(handler: Any) -> bool:
    """``inspect.iscoroutinefunction`` of a step's handler, asked once per handler (it
    unwraps and reads flags, about a microsecond, on every delivery otherwise). Only a
    step's handler: it lives as long as its app, where a function made per call (a
    ``ctx.match`` lambda) would be kept by the cache with what it holds."""
    try:
        return _async_handler(handler)
    except TypeError:  # unhashable (an instance that defines __eq__ alone)
        return inspect.iscoroutinefunction(handler)


@functools.lru_cache(maxsize=1024)
def _async_handler(handler: Any) -> bool:
    return inspect.iscoroutinefunction(handler)


@functools.lru_cache(maxsize=4096)
def _positional(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (2 for ``*args``): Motia calls a handler
    with what it takes."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def handler_args(handler: Callable[..., Any], value: Any, ctx: FlowContext) -> tuple[Any, ...]:
    """``(input, ctx)`` for a handler that takes both, ``(input,)`` or ``()`` for one that
    takes fewer; a one-argument cron handler gets ``ctx`` (Motia 0.x's ``handler(context)``;
    1.x's ``handler(input)`` is given ``None`` as cron input and ignores it)."""
    n = _positional(handler)
    if n >= 2:
        return value, ctx
    if n == 1:
        return (ctx,) if ctx.is_cron() else (value,)
    return ()


async def call_handler(handler: Any, value: Any, ctx: FlowContext) -> Any:
    """Run a handler with the arguments it takes, as the current context; its un-awaited
    ctx calls are made before this returns, and dropped if it raised."""
    ctx.input_value = value
    token = current.set(ctx)
    try:
        result = await invoke(handler, handler_args(handler, value, ctx),
                              _handler_is_async(handler))
        await ctx.settle()
    except BaseException:
        ctx.discard()
        raise
    finally:
        current.reset(token)
    return result
