"""Nobody gets in where they don't belong, and hostile input is bounded: on real Serve apps.

- the admin surface: 401 without the token when one is set, 404 when deployed off loopback
  without one, and open on `raypipe dev`'s loopback only to loopback Host names and, for
  writes, with the header a cross-site form cannot send;
- cross-site requests, foreign Host values and cross-origin WebSockets refused;
- a stream's `can_access` on every surface; a Motia dict config's `canAccess` honoured;
- a lone surrogate, 20 MB, 10,000-deep and truncated bodies: a clear 4xx and nothing stored;
- a WebSocket that joins 5,000 times and never reads: the replica's memory stays bounded;
- malformed WebSocket frames (not JSON, too deep, binary, ids that are not text): an `error`
  event, and the connection goes on;
- a body is limited whatever the method (a 150 MB GET: 413); a key that is not text: 422.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import EXAMPLES, Deploy, wait_for

APPS = Path(__file__).resolve().parent.parent / "apps"
STREAMS = APPS / "streams"
USERS = EXAMPLES / "user-registration"
TOKEN = "s3cret-admin-token"

#: Every admin route, as (method, path under the app, JSON body or None).
ADMIN_ROUTES = [
    ("GET", "/_raypipe/api/app", None),
    ("GET", "/_raypipe/api/flows", None),
    ("GET", "/_raypipe/api/logs", None),
    ("GET", "/_raypipe/api/traces", None),
    ("GET", "/_raypipe/api/traces/nope", None),
    ("GET", "/_raypipe/api/state", None),
    ("GET", "/_raypipe/api/state/users", None),
    ("PUT", "/_raypipe/api/state/users/u1", {"name": "x"}),
    ("DELETE", "/_raypipe/api/state/users/u1", None),
    ("GET", "/_raypipe/dlq", None),
    ("GET", "/_raypipe/dlq/nope", None),
    ("POST", "/_raypipe/dlq/replay", None),
    ("POST", "/_raypipe/dlq/nope/replay", None),
]
STREAM_ADMIN_ROUTES = [
    ("GET", "/_raypipe/api/streams/secret", None),
    ("GET", "/_raypipe/api/streams/secret/g", None),
    ("PUT", "/_raypipe/api/streams/secret/g/planted", {"n": 1}),
    ("DELETE", "/_raypipe/api/streams/secret/g/planted", None),
]
USER = {"name": "Bob", "email": "bob@example.com", "password": "password123"}


def call(url: str, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.request(method, url + path, json=body, headers=headers, timeout=30)


def users(d: Any) -> list[Any]:
    from raypipe.runtime.bridge import runtime_for

    return asyncio.run(runtime_for(d.spec).state.list("users"))


# --- the admin token --------------------------------------------------------------------------
def test_with_a_token_every_admin_route_needs_it(deploy_app: Deploy) -> None:
    d = deploy_app(USERS, admin_token=TOKEN)
    for method, path, body in ADMIN_ROUTES:
        r = call(d.url, method, path, body)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "email" not in r.text
        wrong = call(d.url, method, path, body, authorization="Bearer not-the-token")
        assert wrong.status_code == 401, (method, path)
    for method, path, body in ADMIN_ROUTES:
        r = call(d.url, method, path, body, authorization=f"Bearer {TOKEN}")
        assert r.status_code in (200, 404), (method, path, r.status_code, r.text)
    assert call(d.url, "GET", "/_raypipe/health").status_code == 200
    # The page itself holds no data: it asks for the token.
    assert call(d.url, "GET", "/_raypipe/").status_code == 200


def test_without_a_token_off_loopback_the_admin_surface_is_off(deploy_app: Deploy) -> None:
    """What `raypipe start`, the jobs and the Serve YAMLs deploy: not `raypipe dev`."""
    d = deploy_app(USERS, dev=False)
    for method, path, body in ADMIN_ROUTES:
        r = call(d.url, method, path, body)
        assert r.status_code == 404, (method, path, r.status_code)
    assert call(d.url, "GET", "/_raypipe/").status_code == 404
    assert call(d.url, "GET", "/_raypipe/health").status_code == 200
    r = call(d.url, "POST", "/users/register", USER)
    assert r.status_code == 201, r.text  # the app's own http steps are served


def test_the_token_can_come_from_a_file(deploy_app: Deploy, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    d = deploy_app(USERS, admin_token_file=str(secret), dev=False)
    assert call(d.url, "GET", "/_raypipe/dlq").status_code == 401
    assert call(d.url, "GET", "/_raypipe/dlq", authorization=f"Bearer {TOKEN}").status_code == 200


# --- cross-site requests and DNS rebinding -----------------------------------------------------
def test_open_on_loopback_refuses_foreign_hosts_and_cross_site_writes(deploy_app: Deploy) -> None:
    d = deploy_app(USERS)  # `raypipe dev` on loopback, no token
    assert call(d.url, "GET", "/_raypipe/api/app").status_code == 200
    rebound = call(d.url, "GET", "/_raypipe/api/state/users", host="evil.example")
    assert rebound.status_code == 400
    # A cross-site "simple" POST: text/plain, a foreign Origin, no custom header.
    simple = httpx.post(f"{d.url}/_raypipe/dlq/replay", content=b"{}", timeout=30,
                        headers={"content-type": "text/plain", "origin": "http://evil.example"})
    assert simple.status_code == 403
    # From the page's own origin, with its header: allowed.
    host = urlsplit(d.url).netloc
    own = httpx.post(f"{d.url}/_raypipe/dlq/replay", timeout=30,
                     headers={"origin": f"http://{host}", "x-raypipe-admin": "1"})
    assert own.status_code == 200, own.text
    # Without the header even a same-origin write is refused.
    assert httpx.post(f"{d.url}/_raypipe/dlq/replay", timeout=30).status_code == 403


def test_app_steps_with_a_body_schema_take_only_json(deploy_app: Deploy) -> None:
    d = deploy_app(USERS, dev=False)
    before = len(users(d))
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = httpx.post(f"{d.url}/users/register", content=json.dumps(USER).encode(),
                       headers={"content-type": ctype, "origin": "http://evil.example"},
                       timeout=30)
        assert r.status_code == 415, (ctype, r.status_code, r.text)
    assert len(users(d)) == before
    ok = httpx.post(f"{d.url}/users/register", json=USER, timeout=30)
    assert ok.status_code == 201, ok.text


# --- streams -----------------------------------------------------------------------------------
def _ws_url(d: Any) -> str:
    return d.url.replace("http://", "ws://") + "/streams"


async def _recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


def _join(name: str, group: str, sid: str = "s") -> str:
    return json.dumps({"type": "join", "data": {"streamName": name, "groupId": group,
                                                "subscriptionId": sid}})


def test_cross_origin_websockets_are_refused(deploy_app: Deploy) -> None:
    d = deploy_app(STREAMS, dev=False)

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(_ws_url(d), origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        host = urlsplit(d.url).netloc
        async with websockets.connect(_ws_url(d), origin=f"http://{host}") as ws:
            await ws.send(_join("items", "g"))
            assert (await _recv(ws))["event"]["type"] == "sync"
        async with websockets.connect(_ws_url(d)) as ws:  # no Origin: not a browser
            await ws.send(_join("items", "g"))
            assert (await _recv(ws))["event"]["type"] == "sync"

    asyncio.run(scenario())
    sse = httpx.get(f"{d.url}/streams/items/g", headers={"origin": "http://evil.example"})
    assert sse.status_code == 403


def test_can_access_holds_on_every_surface(deploy_app: Deploy) -> None:
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime_protocols import Origin

    d = deploy_app(STREAMS, dev=False, admin_token=TOKEN)
    rt = runtime_for(d.spec)
    asyncio.run(rt.streams.set("secret", "g", "a", {"n": 1}, Origin("t")))
    asyncio.run(rt.streams.set("guarded", "g", "a", {"n": 1}, Origin("t")))

    async def websocket(query: str = "") -> dict[str, Any]:
        async with websockets.connect(_ws_url(d) + query) as ws:
            await ws.send(_join("secret", "g"))
            return await _recv(ws)

    # WebSocket: refused anonymously and with the wrong password, served with the right one.
    assert asyncio.run(websocket())["event"]["type"] == "error"
    assert asyncio.run(websocket("?token=wrong"))["event"]["type"] == "error"
    assert asyncio.run(websocket("?token=letmein"))["event"]["type"] == "sync"
    # SSE: the same rule.
    assert httpx.get(f"{d.url}/streams/secret/g").status_code == 403
    with httpx.stream("GET", f"{d.url}/streams/secret/g?token=letmein", timeout=30) as r:
        assert r.status_code == 200
    # A Motia dict config's canAccess.
    assert httpx.get(f"{d.url}/streams/guarded/g").status_code == 403
    with httpx.stream("GET", f"{d.url}/streams/guarded/g?token=any", timeout=30) as r:
        assert r.status_code == 200
    # The workbench's stream API is the admin's: nothing read or planted anonymously.
    for method, path, body in STREAM_ADMIN_ROUTES:
        assert call(d.url, method, path, body).status_code == 401, (method, path)
    assert asyncio.run(rt.streams.get("secret", "g", "planted")) is None


# --- hostile bodies ----------------------------------------------------------------------------
def test_hostile_bodies_get_a_clear_4xx_and_nothing_is_stored(deploy_app: Deploy) -> None:
    d = deploy_app(USERS, body_timeout_seconds=2)
    before = len(users(d))
    surrogate = (b'{"name": "Bo\\ud800b", "email": "bob@example.com", '
                 b'"password": "password123"}')
    r = httpx.post(f"{d.url}/users/register", content=surrogate,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422 and "surrogate" in r.text
    big = {**USER, "name": "x" * (20 << 20)}
    r = httpx.post(f"{d.url}/users/register", json=big, timeout=60)
    assert r.status_code == 413
    deep = b"[" * 10_000 + b"]" * 10_000
    r = httpx.post(f"{d.url}/users/register", content=deep,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422 and "nested" in r.text
    assert len(users(d)) == before
    # A body that declares 100 bytes and sends 8: answered within the body timeout.
    host, port = urlsplit(d.url).hostname, urlsplit(d.url).port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /users/register HTTP/1.1\r\nHost: " + f"{host}:{port}".encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                  + b'{"name":')
        t0 = time.monotonic()
        reply = s.recv(4096).decode(errors="replace")
        assert time.monotonic() - t0 < 25
    assert reply.split()[1] in ("408", "400"), reply[:200]
    # Everything still reads.
    assert call(d.url, "GET", "/_raypipe/api/state/users").status_code == 200
    ok = httpx.post(f"{d.url}/users/register", json=USER, timeout=30)
    assert ok.status_code == 201, ok.text
    uid = ok.json()["userId"]
    assert httpx.get(f"{d.url}/users/{uid}/status", timeout=30).status_code == 200


def test_a_body_is_limited_whatever_the_method(deploy_app: Deploy) -> None:
    """GET bodies were neither limited nor timed: a 150 MB one was parsed by the step."""
    d = deploy_app(USERS, body_timeout_seconds=2)
    ok = httpx.post(f"{d.url}/users/register", json=USER, timeout=30)
    uid = ok.json()["userId"]
    status = f"{d.url}/users/{uid}/status"
    before = _replica_private_memory(d.spec.settings.name)
    big = b"x" * (150 << 20)
    r = httpx.request("GET", status, content=big, timeout=120)
    assert r.status_code == 413, r.text[:200]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts what arrives
        for _ in range(150):
            yield b"x" * (1 << 20)

    r = httpx.request("GET", status, content=chunks(), timeout=120)
    assert r.status_code == 413, r.text[:200]
    # Parsing the body took well over its 150 MB. What stays is Serve's: its proxy reads the
    # body as fast as the client sends it and the replica takes in what the proxy had read
    # before the 413 closed the connection (up to ~30 MB measured, more on a busy machine).
    grown = _replica_private_memory(d.spec.settings.name) - before
    assert grown < 75 << 20, f"the replica grew by {grown >> 20} MB"
    # A GET that declares 1,000 bytes and sends 5: answered within the body timeout.
    host, port = urlsplit(d.url).hostname, urlsplit(d.url).port
    path = urlsplit(status).path
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
                  + b"Content-Length: 1000\r\n\r\nhello")
        t0 = time.monotonic()
        reply = s.recv(4096).decode(errors="replace")
        assert time.monotonic() - t0 < 25
    assert reply.split()[1] == "408", reply[:200]
    assert httpx.get(status, timeout=30).status_code == 200  # a plain GET goes on


def test_a_connection_must_send_its_request_head_in_time(deploy_app: Deploy) -> None:
    """Serve's proxy (uvicorn) kept a silent connection, or headers sent a byte at a time,
    open forever; the session's Ray has raypipe's default head timeout (10 s)."""
    d = deploy_app(STREAMS, dev=False)
    host, port = urlsplit(d.url).hostname, urlsplit(d.url).port

    def reply_to(first: bytes) -> tuple[str, float]:
        with socket.create_connection((host, port), timeout=60) as s:
            s.sendall(first)
            t0 = time.monotonic()
            data = s.recv(4096)
            return data.decode(errors="replace"), time.monotonic() - t0

    for first in (b"", b"GET /_raypipe/health HTTP/1.1\r\nHost: x"):
        reply, took = reply_to(first)
        assert reply.startswith("HTTP/1.1 408"), reply[:200]
        assert 5 < took < 30, took
    # A kept-alive connection is held to it too, between its requests.
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(f"GET /_raypipe/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        stream = s.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 200")
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        stream.read(length)
        s.sendall(b"GET /_raypipe/health HTTP/1.1\r\n")
        assert stream.readline().startswith(b"HTTP/1.1 408")

    async def quiet_websocket() -> dict[str, Any]:
        # An upgraded connection is the WebSocket's: no head timeout cuts it.
        async with websockets.connect(_ws_url(d)) as ws:
            await asyncio.sleep(12)
            await ws.send(_join("items", "quiet"))
            return await _recv(ws)

    assert asyncio.run(quiet_websocket())["event"]["type"] == "sync"


def test_a_key_that_is_not_text_is_a_clear_422(deploy_app: Deploy) -> None:
    d = deploy_app(USERS)
    headers = {"content-type": "application/json", "x-raypipe-admin": "1"}
    r = httpx.put(f"{d.url}/_raypipe/api/state/g/k", content=b'{"\\ud800": 1}',
                  headers=headers, timeout=30)
    assert r.status_code == 422 and "\\ud800" in r.json()["detail"], r.text
    r = httpx.put(f"{d.url}/_raypipe/api/state/g/{'k' * 2000}", json={"a": 1},
                  headers=headers, timeout=30)
    assert r.status_code == 422 and "1024" in r.json()["detail"], r.text
    assert httpx.get(f"{d.url}/_raypipe/api/state/g", timeout=30).json() == []


# --- WebSocket limits --------------------------------------------------------------------------
def _replica_private_memory(app_name: str) -> int:
    """The replica's own resident memory (``RssAnon``). Not its RSS: that also counts the pages
    of Ray's shared object store the process has touched, and Serve's proxy hands the replica a
    large batch of body chunks through the object store (tens of MB under load, varying from
    run to run), which the object store owns and frees, not the replica."""
    import psutil

    from raypipe import constants

    serve_app = constants.serve_app_name(app_name)
    total = 0
    for p in psutil.process_iter(["cmdline"]):
        if any(f"ServeReplica:{serve_app}" in part for part in p.info["cmdline"] or ()):
            with open(f"/proc/{p.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            total += int(fields["RssAnon"].split()[0]) << 10
    assert total, f"no replica process of {serve_app}"
    return total


def test_a_websocket_that_joins_5000_times_and_never_reads_stays_bounded(
        deploy_app: Deploy) -> None:
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime_protocols import Origin

    d = deploy_app(STREAMS, dev=False)
    rt = runtime_for(d.spec)
    before = _replica_private_memory(d.spec.settings.name)

    async def scenario() -> str:
        async with websockets.connect(_ws_url(d), max_queue=None) as ws:
            for i in range(5000):
                await ws.send(_join("items", f"g{i % 50}", f"s{i}"))
            for n in range(300):  # changes to every group, for subscribers that never read
                await asyncio.gather(*(rt.streams.set("items", f"g{g}", "x", {"n": n},
                                                      Origin("t")) for g in range(50)))
            try:
                await asyncio.wait_for(ws.wait_closed(), 60)
            except asyncio.TimeoutError:
                return "open"
            return f"closed {ws.close_code}"

    outcome = asyncio.run(scenario())
    grown = _replica_private_memory(d.spec.settings.name) - before
    assert outcome == "closed 1008", outcome  # too slow: closed, not buffered without end
    assert grown < 100 << 20, f"the replica grew by {grown >> 20} MB"
    r = httpx.get(f"{d.url}/_raypipe/health", timeout=30)
    assert r.status_code == 200


def test_subscriptions_per_connection_are_capped(deploy_app: Deploy) -> None:
    d = deploy_app(STREAMS, dev=False, ws_max_subscriptions=3)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(_ws_url(d)) as ws:
            for i in range(4):
                await ws.send(_join("items", f"cap{i}", f"s{i}"))
            return [await _recv(ws) for _ in range(4)]

    got = asyncio.run(scenario())
    errors = [m for m in got if m["event"]["type"] == "error"]
    assert len(errors) == 1 and "too many subscriptions" in errors[0]["event"]["data"]["message"]


def test_malformed_frames_get_an_error_event_and_the_connection_goes_on(
        deploy_app: Deploy) -> None:
    d = deploy_app(STREAMS, dev=False)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with websockets.connect(_ws_url(d)) as ws:
            frames: list[str | bytes] = [
                "not json", "[1, 2]", '{"type": "join", "data": 5}', '{"type": "dance"}',
                "[" * 10_000 + "]" * 10_000,  # deeper than the parser's recursion
                b"\x00\x01binary",  # a binary frame
                # A group id that is not text: a lone surrogate, escaped in the JSON text.
                '{"type": "join", "data": {"streamName": "items", "groupId": "\\ud800"}}',
                json.dumps({"type": "join", "data": {"streamName": "items", "groupId": "g",
                                                     "id": "x" * 5000}}),  # an id too long
            ]
            for frame in frames:
                await ws.send(frame)
            errors = [await _recv(ws) for _ in range(len(frames))]
            await ws.send(_join("items", "after"))
            return errors, await _recv(ws)

    errors, sync = asyncio.run(scenario())
    assert [e["event"]["type"] for e in errors] == ["error"] * 8, errors
    messages = [e["event"]["data"]["message"] for e in errors]
    assert "nested" in messages[4] and "binary" in messages[5]
    assert "surrogate" in messages[6] and "groupId" in messages[6]
    assert "1024" in messages[7]
    assert sync["event"]["type"] == "sync"


# --- the workbench with a token, in a real browser ----------------------------------------------
def test_the_workbench_asks_for_the_token_once_and_keeps_it_in_the_tab(
        deploy_app: Deploy, page: Any) -> None:
    d = deploy_app(USERS, admin_token=TOKEN, dev=False)
    page.goto(f"{d.url}/_raypipe/#/flows")
    form = page.locator("[data-testid=token-form]")
    form.wait_for()
    form.locator("input").fill(TOKEN)
    form.locator("button").click()
    page.locator("[data-testid=flow-graph]").wait_for()
    page.locator("[data-testid=flow-steps]").wait_for()
    assert page.evaluate("sessionStorage.getItem('raypipe-admin-token')") == TOKEN
    assert page.evaluate("document.cookie") == ""
    page.goto(f"{d.url}/_raypipe/#/state")  # the next view needs no second prompt
    page.locator("[data-testid=groups]").wait_for()
    assert page.locator("[data-testid=token-form]").count() == 0
    wait_for(lambda: page.locator("[data-testid=groups] li").count() >= 0, timeout=10)
