"""Stream subscriptions over HTTP: WebSocket at ``/streams`` (Motia 0.x's protocol, so its
clients work unchanged) and server-sent events at ``/streams/{name}/{group}[/{id}]``.

Both relay the process's stream relay: each subscriber has its own bounded queue, so a slow
client is told and dropped rather than slowing anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from sse_starlette.sse import EventSourceResponse
from starlette.requests import HTTPConnection

from raypipe.app import App
from raypipe.context import Runtime
from raypipe.streams.hub import Key
from raypipe.streams.relay import Subscription, error_message

__all__ = ["streams_router"]

log = logging.getLogger("raypipe.streams")


def _load_authenticate(app: App) -> Callable[[HTTPConnection], Any] | None:
    ref = app.settings.authenticate
    if not ref:
        return None
    module, _, name = ref.partition(":")
    fn = getattr(importlib.import_module(module), name or "authenticate")
    if not callable(fn):
        raise TypeError(f"authenticate = {ref!r} is not a function")
    return fn  # type: ignore[no-any-return]


class Access:
    """The app's ``authenticate`` and each stream's ``can_access``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.authenticate = _load_authenticate(app)

    async def who(self, conn: HTTPConnection) -> Any:
        if self.authenticate is None:
            return None
        result = self.authenticate(conn)
        return await result if inspect.isawaitable(result) else result

    async def refusal(self, key: Key, auth: Any) -> str | None:
        """Why this subscription is refused, or ``None``."""
        stream, group, item_id = key
        config = self.app.streams.get(stream)
        if config is None:
            return f"no stream {stream!r}"
        if config.can_access is None:
            return None
        allowed = config.can_access({"streamName": stream, "groupId": group, "id": item_id},
                                    auth)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return None if allowed else "access denied"


def streams_router(app: App, runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(tags=["streams"])
    access = Access(app)

    @router.websocket("/streams")
    async def websocket(ws: WebSocket) -> None:
        try:
            auth = await access.who(ws)
        except Exception as exc:
            log.info("stream connection refused: %s", exc)
            await ws.close(code=4401, reason="unauthorized")
            return
        await ws.accept()
        send_lock = asyncio.Lock()
        joined: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}

        async def send(message: dict[str, Any]) -> None:
            async with send_lock:
                await ws.send_json(message)

        async def forward(sub: Subscription) -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                async for message in sub:
                    await send(message)

        async def leave(sid: str) -> None:
            entry = joined.pop(sid, None)
            if entry:
                await entry[0].close()
                entry[1].cancel()

        try:
            while True:
                request = await ws.receive_json()
                data = request.get("data") or {}
                key: Key = (str(data.get("streamName")), str(data.get("groupId")), data.get("id"))
                sid = str(data.get("subscriptionId") or key)
                if request.get("type") == "join":
                    problem = await access.refusal(key, auth)
                    if problem:
                        await send({**error_message(key, problem), "subscriptionId": sid})
                        continue
                    await leave(sid)
                    sub = await runtime().relay().subscribe(*key)
                    joined[sid] = (sub, asyncio.get_running_loop().create_task(forward(sub)))
                elif request.get("type") == "leave":
                    await leave(sid)
        except (WebSocketDisconnect, json.JSONDecodeError):
            pass
        finally:
            for sid in list(joined):
                await leave(sid)

    async def sse(request: Request, name: str, group_id: str,
                  item_id: str | None = None) -> EventSourceResponse:
        key: Key = (name, group_id, item_id)
        try:
            auth = await access.who(request)
        except Exception as exc:
            raise HTTPException(401, "unauthorized") from exc
        problem = await access.refusal(key, auth)
        if problem:
            raise HTTPException(404 if problem.startswith("no stream") else 403, problem)
        sub = await runtime().relay().subscribe(*key)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for message in sub:
                    yield {"data": json.dumps(message)}
            finally:
                await sub.close()

        return EventSourceResponse(events(), ping=15)

    router.add_api_route("/streams/{name}/{group_id}", sse, methods=["GET"],
                         summary="Follow a stream group (server-sent events)")
    router.add_api_route("/streams/{name}/{group_id}/{item_id}", sse, methods=["GET"],
                         summary="Follow one stream item (server-sent events)")
    return router
