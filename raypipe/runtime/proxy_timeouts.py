"""A request-head timeout for Serve's HTTP proxy (uvicorn), installed in the proxy process by
Serve's own hook (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``, set where raypipe starts
Ray: :func:`raypipe.runtime.deploy.prepare_local_ray`).

uvicorn starts no timer on a new connection, and stops its keep-alive timer at the first byte
of the next request: a client that connects and sends nothing, or sends its headers a byte at
a time, holds a connection (and a file descriptor) forever. Here every connection must send a
complete request head within :data:`HEADER_TIMEOUT_ENV` seconds of opening, and of its last
response; otherwise it is answered 408 and closed. Bodies have their own limit in the guard.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

__all__ = ["HEADER_TIMEOUT_ENV", "install"]

#: Seconds a connection has to send a request's head; unset or 0: no limit.
HEADER_TIMEOUT_ENV = "RAYPIPE_INGRESS_HEADER_TIMEOUT_S"

_TIMEOUT_REPLY = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                  b"content-length: 33\r\nconnection: close\r\n\r\n"
                  b"the request head did not arrive\r\n")


def _patch(cls: Any, timeout: float) -> None:
    if getattr(cls, "_raypipe_header_timeout", None) is not None:
        return
    cls._raypipe_header_timeout = timeout
    made, completed, lost = cls.connection_made, cls.on_response_complete, cls.connection_lost
    upgrade = cls.handle_websocket_upgrade

    def arm(self: Any) -> None:
        disarm(self)
        waiting_for = self.cycle  # a new request replaces it once its head is complete
        loop = asyncio.get_running_loop()
        self._raypipe_head_timer = loop.call_later(timeout, expire, self, waiting_for)

    def disarm(self: Any) -> None:
        timer = getattr(self, "_raypipe_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._raypipe_head_timer = None

    def expire(self: Any, waiting_for: Any) -> None:
        self._raypipe_head_timer = None
        if self.cycle is not waiting_for or self.transport.is_closing():
            return  # a request's head arrived: its handling has its own limits
        self.transport.write(_TIMEOUT_REPLY)
        self.transport.close()

    def connection_made(self: Any, transport: Any) -> None:
        made(self, transport)
        arm(self)

    def handle_websocket_upgrade(self: Any, *args: Any) -> None:
        disarm(self)  # the transport is the WebSocket's now, and its head has arrived
        upgrade(self, *args)

    def on_response_complete(self: Any) -> None:
        completed(self)
        if not self.transport.is_closing():
            arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        disarm(self)
        lost(self, exc)

    cls.connection_made = connection_made
    cls.on_response_complete = on_response_complete
    cls.connection_lost = connection_lost
    cls.handle_websocket_upgrade = handle_websocket_upgrade


def install() -> list[Any]:
    """Serve's proxy callback: patch uvicorn's HTTP protocols; no middleware."""
    timeout = float(os.environ.get(HEADER_TIMEOUT_ENV) or 0)
    if timeout > 0:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        _patch(H11Protocol, timeout)
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:  # httptools is optional for uvicorn
            pass
        else:
            _patch(HttpToolsProtocol, timeout)
    return []
