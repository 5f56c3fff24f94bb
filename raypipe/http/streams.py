"""Stream subscriptions over HTTP: WebSocket at ``/streams`` (Motia 0.x's protocol, so its
clients work unchanged) and server-sent events at ``/streams/{name}/{group}[/{id}]``.

Both relay the process's stream relay: each subscriber has its own bounded queue, so a slow
client is told and dropped rather than slowing anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from sse_starlette.sse import EventSourceResponse
from starlette.requests import HTTPConnection

from raypipe.app import App
from raypipe.errors import BackendUnavailableError
from raypipe.jsonvalues import parse_json, shown
from raypipe.loader import load_authenticate
from raypipe.runtime_protocols import Runtime
from raypipe.state.ids import check_ids
from raypipe.streams.hub import Key
from raypipe.streams.relay import Subscription, error_message

__all__ = ["streams_router"]

log = logging.getLogger("raypipe.streams")


class Access:
    """The app's ``authenticate`` and each stream's ``can_access``."""

    def __init__(self, app: App) -> None:
        self.app = app
        ref = app.settings.authenticate
        self.authenticate = load_authenticate(ref) if ref else None

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


def _frame_error(message: str) -> dict[str, Any]:
    return {"timestamp": int(time.time() * 1000),
            "event": {"type": "error", "data": {"message": message}}}


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
        settings = app.settings
        # One bounded buffer for everything this connection is sent: a client that does not
        # read is closed once it is full, whatever it subscribed to.
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(settings.ws_send_buffer)
        joined: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}
        closing = asyncio.Event()

        def send(message: dict[str, Any]) -> None:
            try:
                outbox.put_nowait(message)
            except asyncio.QueueFull:
                closing.set()

        async def sender() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    await ws.send_json(await outbox.get())

        async def forward(sub: Subscription) -> None:
            async for message in sub:
                send(message)
                if closing.is_set():
                    return

        async def leave(sid: str) -> None:
            entry = joined.pop(sid, None)
            if entry:
                await entry[0].close()
                entry[1].cancel()

        async def frame() -> Any:
            """The next frame's message; ValueError for one that is not a protocol message
            (binary, too large, not JSON, nested too deep)."""
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                raise ValueError("binary frames are not part of the protocol; send JSON text")
            if len(text) > settings.max_body_bytes:
                raise ValueError(f"a frame of {len(text)} characters, over the "
                                 f"{settings.max_body_bytes} allowed")
            request = parse_json(text.encode("utf-8", "surrogatepass"),
                                 settings.max_json_depth)
            if not isinstance(request, dict):
                raise ValueError("a message is an object: {\"type\", \"data\"}")
            return request

        async def handle(request: dict[str, Any]) -> None:
            data = request.get("data") or {}
            if not isinstance(data, dict):
                raise ValueError("'data' must be an object")
            kind = request.get("type")
            key: Key = (str(data.get("streamName")), str(data.get("groupId")),
                        None if data.get("id") is None else str(data.get("id")))
            check_ids(stream=key[0], group=key[1], item=key[2])
            sid = str(data.get("subscriptionId") or key)
            if kind == "join":
                problem = await access.refusal(key, auth)
                if problem is None and sid not in joined and (
                        len(joined) >= settings.ws_max_subscriptions):
                    problem = (f"too many subscriptions on one connection (at most "
                               f"{settings.ws_max_subscriptions})")
                if problem:
                    send({**error_message(key, problem), "subscriptionId": sid})
                    return
                await leave(sid)
                sub = await runtime().relay().subscribe(*key)
                joined[sid] = (sub, asyncio.get_running_loop().create_task(forward(sub)))
            elif kind == "leave":
                await leave(sid)
            else:
                send(_frame_error(f"unknown message type {shown(repr(kind))}; use 'join' or "
                                  "'leave'"))

        async def receive() -> None:
            # Every frame gets an answer and the connection stays: a malformed one an
            # ``error`` event, as the docs promise, not a dropped connection.
            while True:
                try:
                    request = await frame()
                except (ValueError, UnicodeError) as exc:
                    send(_frame_error(f"malformed message: {shown(str(exc))}"))
                    continue
                try:
                    await handle(request)
                except (ValueError, TypeError, AttributeError) as exc:
                    send(_frame_error(f"malformed message: {shown(str(exc))}"))
                except BackendUnavailableError as exc:
                    send(_frame_error(str(exc)))
                except Exception as exc:
                    log.exception("stream request failed")
                    send(_frame_error(f"the request failed: {type(exc).__name__}"))

        tasks = [asyncio.get_running_loop().create_task(c) for c in (sender(), receive())]
        overflow = asyncio.get_running_loop().create_task(closing.wait())
        try:
            await asyncio.wait([*tasks, overflow], return_when=asyncio.FIRST_COMPLETED)
            if closing.is_set():
                with contextlib.suppress(Exception):
                    await ws.close(code=1008, reason="too slow: the send buffer is full")
        finally:
            for task in (*tasks, overflow):
                task.cancel()
            await asyncio.gather(*tasks, overflow, return_exceptions=True)
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
