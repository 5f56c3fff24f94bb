"""Who may reach what of an app over HTTP, and how much they may send: an ASGI middleware in
front of every route.

- The admin surface (``/_raypipe/``: the workbench's API, dead letters; not
  ``/_raypipe/health``) needs ``Authorization: Bearer <admin_token>``. Without a token it is
  served only by ``raypipe dev`` on a loopback host, and then only to loopback ``Host`` names
  (no DNS rebinding) and, for writes, with the ``X-Raypipe-Admin`` header (a cross-site form
  cannot send one); anywhere else it is off (404).
- Stream subscriptions (``/streams``) and the admin surface refuse browser ``Origin`` s other
  than the app's own and ``allowed_origins``, and ``Host`` values outside ``allowed_hosts``.
- Every request body, whatever the request's method, is read here first, within
  ``max_body_bytes`` (an http step's own, for its route; 413, before anything parses it) and
  ``body_timeout_seconds`` (408).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from raypipe.settings import Settings

__all__ = ["ADMIN_HEADER", "Guard", "admin_mode"]

log = logging.getLogger("raypipe.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What the workbench sends with every request; a cross-site form or simple request cannot.
ADMIN_HEADER = "x-raypipe-admin"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Under /_raypipe/, what needs no token: the health check, and the page itself (it holds no
#: data; it asks for the token and sends it with every call).
_PUBLIC = ("/_raypipe/health",)
_PROTECTED_PREFIXES = ("/_raypipe/api", "/_raypipe/dlq")


def admin_mode(settings: Settings) -> str:
    """``token`` (a token is set), ``open`` (``raypipe dev`` on loopback, no token) or
    ``off``."""
    if settings.admin_secret:
        return "token"
    return "open" if settings.dev else "off"


def _host_name(value: str) -> str:
    """``Host`` without its port (``[::1]:3111`` -> ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


_PARAM = re.compile(r"\{[^}]*\}")


class BodyLimits:
    """The body limit of each route that sets its own (an http step's ``max_body_bytes``);
    ``default`` (the app's ``max_body_bytes``) for every other request. Routes are tried in
    the order the app's router tries them (a static segment before a parameter)."""

    def __init__(self, default: int, routes: Iterable[tuple[str, str, int]] = ()) -> None:
        self.default = default
        ordered = sorted(routes, key=lambda r: [seg.startswith("{") for seg in r[1].split("/")])
        self._routes = [(method, re.compile(_pattern(path)), limit)
                        for method, path, limit in ordered]

    def __call__(self, method: str, path: str) -> int:
        for route_method, pattern, limit in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return limit
        return self.default


def _pattern(path: str) -> str:
    parts = _PARAM.split(path)
    return "[^/]+".join(re.escape(p) for p in parts)


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings,
                 body_limits: BodyLimits | None = None) -> None:
        self.app = app
        self.settings = settings
        self.body_limits = body_limits or BodyLimits(settings.max_body_bytes)
        self.mode = admin_mode(settings)
        self._token = (settings.admin_secret or "").encode()
        hosts = set(map(str.lower, settings.allowed_hosts))
        if not hosts and self.mode == "open":
            hosts = set(LOOPBACK_HOSTS)
        self.hosts = frozenset(hosts)
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.allowed_origins)
        if self.mode == "off":
            log.warning("the admin surface (/_raypipe/: workbench, state, logs, traces, dead "
                        "letters) is off: set admin_token (RAYPIPE_ADMIN_TOKEN, or "
                        "admin_token_file) to serve it; see docs/security.md")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = self._path(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        refusal = self._refusal(scope, path, headers)
        if refusal is not None:
            status, detail, extra = refusal
            await _refuse(scope, receive, send, status, detail, extra)
            return
        if kind == "http" and _may_have_body(scope, headers):
            limit = self.body_limits(scope.get("method", ""), path)
            body = await self._read_body(scope, receive, send, headers, limit)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    @staticmethod
    def _path(scope: Scope) -> str:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        return path[len(root):] if root and path.startswith(root) else path

    def _refusal(self, scope: Scope, path: str, headers: dict[str, str]
                 ) -> tuple[int, str, dict[str, str]] | None:
        admin = path == "/_raypipe" or path.startswith("/_raypipe/")
        stream = path == "/streams" or path.startswith("/streams/")
        if not (admin or stream) or path in _PUBLIC:
            return None
        if admin and self.mode == "off":
            return 404, "Not Found", {}
        if self.hosts and _host_name(headers.get("host", "")) not in self.hosts:
            return 400, "this Host is not allowed (allowed_hosts)", {}
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, headers):
            return 403, "this Origin is not allowed (allowed_origins)", {}
        if not admin:
            return None
        protected = path.startswith(_PROTECTED_PREFIXES)
        if self.mode == "token" and protected and not self._authorised(headers):
            return 401, "the admin token is needed (Authorization: Bearer ...)", {
                "www-authenticate": 'Bearer realm="raypipe"'}
        if (self.mode == "open" and scope.get("method") in _MUTATING
                and ADMIN_HEADER not in headers):
            return 403, f"admin writes need the {ADMIN_HEADER} header", {}
        return None

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                                  self._token)

    def _origin_ok(self, origin: str, headers: dict[str, str]) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        # Same origin: the Origin's host and port are the request's Host.
        return urlsplit(origin).netloc == headers.get("host", "").lower()

    async def _read_body(self, scope: Scope, receive: Receive, send: Send,
                         headers: dict[str, str], limit: int) -> bytes | None:
        """The whole body within ``limit`` and the time limit, or ``None`` once the refusal
        is sent."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, 413, f"the body is larger than {limit} bytes",
                          {})
            return None
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.body_timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                await _refuse(scope, receive, send, 408, "the body did not arrive in time", {})
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, 413,
                              f"the body is larger than {limit} bytes", {})
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _may_have_body(scope: Scope, headers: dict[str, str]) -> bool:
    """Whether the request carries a body, whatever its method: HTTP/1.1 frames one with
    ``Content-Length`` or ``Transfer-Encoding``. (A GET's body was read by the step that
    parses it, unlimited, while only POST, PUT, PATCH and DELETE were read here.)"""
    if scope.get("method") in _MUTATING or "transfer-encoding" in headers:
        return True
    declared = headers.get("content-length")
    return declared is not None and declared.strip() != "0"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str,
                  extra: dict[str, str]) -> None:
    if scope["type"] == "websocket":
        # Closed before the handshake is accepted: the client gets an HTTP 403.
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               *((k.encode(), v.encode()) for k, v in extra.items())]
    if status in (408, 413):
        # The rest of the body is not wanted: closing the connection lets the server stop
        # reading it (kept open, it reads it all, and Serve's proxy passes it on to the
        # replica, which held tens of MB of a 150 MB body that way).
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
