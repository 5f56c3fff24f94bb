"""Async set-up that runs once per actor life: every entry point awaits it, calls arriving
while it runs wait for the same run, and a failed run lets the next call try again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["Once"]


class Once:
    def __init__(self, setup: Callable[[], Awaitable[None]]) -> None:
        self._setup = setup
        self._done: asyncio.Future[None] | None = None

    async def __call__(self) -> None:
        done = self._done
        if done is None:
            done = self._done = asyncio.get_running_loop().create_future()
            try:
                await self._setup()
            except BaseException as exc:
                self._done = None
                done.set_exception(exc)
                done.exception()  # this caller raises it; waiters, if any, get it too
                raise
            done.set_result(None)
        await done
