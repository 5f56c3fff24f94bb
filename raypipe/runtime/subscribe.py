"""``raypipe.subscribe``: follow a stream from any Python process that can reach the cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.deploy import connect
from raypipe.runtime.spec import AppSpec

__all__ = ["subscribe"]


async def subscribe(name: str, group_id: str, id: str | None = None, *,
                    app: str | Path | AppSpec = ".",
                    buffer: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Yield the stream's messages, as WebSocket and SSE clients get them: a ``sync`` message
    with the current item (or the group's items), then every change and sent event."""
    spec = app if isinstance(app, AppSpec) else AppSpec.from_dir(app)
    connect(namespace=spec.namespace, app=spec.settings.name, app_root=spec.root)
    sub = await runtime_for(spec).relay().subscribe(name, group_id, id, maxsize=buffer)
    try:
        async for message in sub:
            yield message
    finally:
        await sub.close()
