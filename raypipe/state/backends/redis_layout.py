"""The layout of an app's keys in Redis, checked once per key space when a backend first
uses it. Layout 1 joined group, item and field ids with U+001F into one key, so ids holding
that character could name another item's field hash; layout 2 writes each id's length
(:func:`raypipe.constants.state_field_key`). A key space written in layout 1 is moved to
layout 2 key by key; a key whose ids cannot be told apart is refused, by name, not guessed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from raypipe import constants
from raypipe.errors import StateLayoutError

__all__ = ["LayoutGate", "ensure_layout"]

_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


async def ensure_layout(client: Any, app: str, space: str) -> None:
    """Record layout 2 for ``app``'s ``space``, first moving any layout 1 field keys."""
    marker = constants.state_layout_key(app, space)
    if await client.get(marker) == constants.STATE_LAYOUT:
        return
    prefix = constants.state_fields_prefix(app, space)
    async for key in client.scan_iter(match=prefix.translate(_GLOB) + "*\x1f*", count=1000):
        parts = key[len(prefix):].split("\x1f")
        if len(parts) != 3:
            raise StateLayoutError(
                key, f"it was written in layout 1, and its {len(parts) - 1} separators do not "
                "say which are the group's, the item's and the field's; delete it "
                "(redis-cli DEL) or move it by hand")
        group, item, field = parts
        new = constants.state_field_key(app, group, item, field, space)
        # RENAMENX: a key already written in layout 2 is newer than the old one.
        if not await client.renamenx(key, new):
            await client.delete(key)
    await client.set(marker, constants.STATE_LAYOUT)


class LayoutGate:
    """Runs :func:`ensure_layout` once, before the first read or write of a backend."""

    def __init__(self, client: Any, app: str, space: str) -> None:
        self._args = (client, app, space)
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    async def wait(self) -> None:
        if self._task is None or (self._task.done() and self._task.exception() is not None):
            self._task = asyncio.ensure_future(ensure_layout(*self._args))
        await asyncio.shield(self._task)
        self.ready = True
