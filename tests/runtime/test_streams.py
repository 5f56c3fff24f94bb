"""Streams on real Ray and Serve: WebSocket (Motia's protocol), SSE, raypipe.subscribe."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import EXAMPLES, Deploy, wait_for

APP = Path(__file__).resolve().parent.parent / "apps" / "streams"


@pytest.fixture(scope="module")
def app(ray_session: int) -> Any:
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    spec = AppSpec.from_dir(APP, name="streams-tests", port=ray_session, dev=True,
                            route_prefix="/st")
    d = deploy(spec)
    yield d, runtime_for(spec)
    teardown(spec)


def ws_url(d: Any, query: str = "") -> str:
    return d.url.replace("http://", "ws://") + "/streams" + query


def origin() -> Any:
    from raypipe.runtime_protocols import Origin

    return Origin("test")


async def join(ws: Any, stream: str, group: str, item: str | None = None,
               sid: str = "s") -> None:
    data = {"streamName": stream, "groupId": group, "subscriptionId": sid}
    if item:
        data["id"] = item
    await ws.send(json.dumps({"type": "join", "data": data}))


async def recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


def summary(messages: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(m["event"]["type"], m.get("id"), m["event"].get("data")) for m in messages]


def test_websocket_join_sync_changes_in_order_and_leave(app: Any) -> None:
    d, rt = app
    store = rt.streams

    async def scenario() -> None:
        async with websockets.connect(ws_url(d)) as a, websockets.connect(ws_url(d)) as b:
            await store.set("items", "g1", "pre", {"n": 0}, origin())
            await join(a, "items", "g1")
            await join(b, "items", "g2")
            sync_a, sync_b = await recv(a), await recv(b)
            assert sync_a["event"] == {"type": "sync", "data": [{"n": 0, "pad": "", "id": "pre"}]}
            assert sync_a["streamName"] == "items" and sync_a["groupId"] == "g1"
            assert sync_b["event"] == {"type": "sync", "data": []}
            await store.set("items", "g1", "a", {"n": 1}, origin())
            await store.set("items", "g2", "x", {"n": 5}, origin())
            await store.update("items", "g1", "a", [{"type": "increment", "path": "n"}], origin())
            await store.delete("items", "g1", "a", origin())
            got = [await recv(a) for _ in range(3)]
            assert summary(got) == [("create", "a", {"n": 1, "pad": "", "id": "a"}),
                                    ("update", "a", {"n": 2, "pad": "", "id": "a"}),
                                    ("delete", "a", {"n": 2, "pad": "", "id": "a"})]
            assert got[0]["timestamp"] < got[1]["timestamp"] < got[2]["timestamp"]
            assert summary([await recv(b)]) == [("create", "x", {"n": 5, "pad": "", "id": "x"})]
            # Leave: nothing more arrives.
            await a.send(json.dumps({"type": "leave", "data": {
                "streamName": "items", "groupId": "g1", "subscriptionId": "s"}}))
            await asyncio.sleep(0.3)
            await store.set("items", "g1", "late", {"n": 3}, origin())
            with pytest.raises(asyncio.TimeoutError):
                await recv(a, timeout=1.0)

    asyncio.run(scenario())


def test_sse_python_and_websocket_see_the_same_sequence(app: Any) -> None:
    import raypipe

    d, rt = app
    n_changes = 30

    async def by_ws() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(d)) as ws:
            await join(ws, "items", "same")
            return [await recv(ws) for _ in range(n_changes + 1)]

    async def by_sse() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=30) as client, client.stream(
                "GET", f"{d.url}/streams/items/same") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    out.append(json.loads(line[5:]))
                    if len(out) == n_changes + 1:
                        return out
        return out

    async def by_python() -> list[dict[str, Any]]:
        out = []
        async for message in raypipe.subscribe("items", "same", app=rt.spec):
            out.append(message)
            if len(out) == n_changes + 1:
                break
        return out

    async def scenario() -> list[list[dict[str, Any]]]:
        readers = [asyncio.create_task(f()) for f in (by_ws, by_sse, by_python)]
        await asyncio.sleep(2)  # all three joined
        for i in range(n_changes):
            await rt.streams.set("items", "same", f"i{i % 7}", {"n": i}, origin())
        return await asyncio.wait_for(asyncio.gather(*readers), 60)

    ws_seen, sse_seen, py_seen = asyncio.run(scenario())
    assert summary(ws_seen)[1:] == summary(sse_seen)[1:] == summary(py_seen)[1:]
    assert [m["timestamp"] for m in ws_seen[1:]] == [m["timestamp"] for m in py_seen[1:]]
    assert {m["event"]["type"] for m in ws_seen[1:]} == {"create", "update"}


def test_twenty_subscribers_at_200_updates_per_second_miss_nothing(app: Any) -> None:
    d, rt = app
    subscribers, updates = 20, 400

    async def scenario() -> list[list[int]]:
        conns = [await websockets.connect(ws_url(d)) for _ in range(subscribers)]
        for ws in conns:
            await join(ws, "items", "busy")
            await recv(ws)

        async def read(ws: Any) -> list[int]:
            return [(await recv(ws, 30))["event"]["data"]["n"] for _ in range(updates)]

        readers = [asyncio.create_task(read(ws)) for ws in conns]
        start = time.monotonic()
        for i in range(updates):
            await rt.streams.set("items", "busy", "counter", {"n": i}, origin())
            await asyncio.sleep(max(0.0, start + (i + 1) / 200 - time.monotonic()))
        seen = await asyncio.gather(*readers)
        for ws in conns:
            await ws.close()
        return seen

    for seen in asyncio.run(scenario()):
        assert seen == list(range(updates))


def test_a_subscriber_that_never_reads_does_not_slow_a_fast_one(app: Any) -> None:
    d, rt = app
    updates, pad = 1500, "x" * 20_000  # 30 MB: far more than socket buffers hold

    async def scenario() -> tuple[list[int], list[dict[str, Any]]]:
        async with websockets.connect(ws_url(d), max_size=None) as stuck, \
                websockets.connect(ws_url(d), max_size=None) as fast:
            await join(stuck, "items", "flood")
            await join(fast, "items", "flood")
            await recv(fast)

            async def read_fast() -> list[int]:
                return [(await recv(fast, 30))["event"]["data"]["n"] for _ in range(updates)]

            reader = asyncio.create_task(read_fast())
            for i in range(updates):
                await rt.streams.set("items", "flood", "big", {"n": i, "pad": pad}, origin())
            fast_seen = await asyncio.wait_for(reader, 60)
            # Now drain the stuck one: it was told it fell behind, then dropped.
            tail = []
            with pytest.raises((asyncio.TimeoutError, websockets.ConnectionClosed)):
                while True:
                    tail.append(await recv(stuck, 3))
            return fast_seen, tail

    fast_seen, tail = asyncio.run(scenario())
    assert fast_seen == list(range(updates))
    # Serve's proxy buffers what a WebSocket client does not read, so the stuck client may
    # get everything late, or, once its own queue overflows, an error and nothing more
    # (tests/streams/test_hub.py pins that down). Either way, never a gap.
    changes = [m for m in tail if m["event"]["type"] in ("create", "update")]
    assert [m["event"]["data"]["n"] for m in changes] == list(range(len(changes)))
    if len(changes) < updates:
        assert tail[-1]["event"]["type"] == "error"


def test_access_control(app: Any) -> None:
    d, _ = app

    async def scenario() -> None:
        async with websockets.connect(ws_url(d)) as anon:
            await join(anon, "secret", "g", sid="denied")
            refused = await recv(anon)
            assert refused["event"]["type"] == "error"
            assert refused["event"]["data"]["message"] == "access denied"
            assert refused["subscriptionId"] == "denied"
            await join(anon, "nope", "g", sid="unknown")
            assert "no stream" in (await recv(anon))["event"]["data"]["message"]
        async with websockets.connect(ws_url(d, "?token=letmein")) as ok:
            await join(ok, "secret", "g")
            assert (await recv(ok))["event"]["type"] == "sync"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url(d, "?token=forbidden")):
                pass

    asyncio.run(scenario())
    assert httpx.get(f"{d.url}/streams/secret/g").status_code == 403
    assert httpx.get(f"{d.url}/streams/nope/g").status_code == 404


def test_stream_trigger_fires_once_per_matching_change(app: Any) -> None:
    _, rt = app

    async def scenario() -> None:
        await rt.streams.set("items", "counted", "c", {"n": 0}, origin())
        for _ in range(12):
            await rt.streams.update("items", "counted", "c",
                                    [{"type": "increment", "path": "n"}], origin())

    asyncio.run(scenario())
    wait_for(lambda: asyncio.run(rt.state.get("at-ten", "c")), timeout=30,
             message="the stream trigger")
    time.sleep(1)
    assert asyncio.run(rt.state.get("at-ten", "c")) == {"fired": 1}


def test_seed_stream_workflow_completes_through_its_trigger_once(deploy_app: Deploy) -> None:
    import ray

    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(EXAMPLES / "parallel-workflow")

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(d)) as ws:
            await join(ws, "workflows", "active-workflows")
            await recv(ws)
            # curl -X POST http://localhost:3111/api/workflow/stream/start
            #   -H "Content-Type: application/json" -d '{"totalSteps": 5}'
            async with httpx.AsyncClient() as client:
                r = await client.post(f"{d.url}/api/workflow/stream/start",
                                      json={"totalSteps": 5})
            assert r.status_code == 200
            seen = []
            while not seen or seen[-1]["event"]["data"].get("status") != "completed":
                seen.append(await recv(ws, 60))
            return seen

    seen = asyncio.run(scenario())
    progress = [m["event"]["data"]["completedSteps"] for m in seen]
    assert progress == [0, 1, 2, 3, 4, 5, 5]
    # The completion's last stream write reaches the client before its delivery is counted.
    def completion() -> Any:
        steps = ray.get(runtime_for(d.spec).dispatcher.stats.remote())["steps"]
        c = steps["stream-workflow-completion"]
        return c if c.get("done") else None

    counted = wait_for(completion, timeout=30, message="the completion to be counted")
    assert counted["accepted"] == 1 and counted["done"] == 1


def test_raypipe_watch_shows_a_workflow_filling_up(deploy_app: Deploy) -> None:
    from typer.testing import CliRunner

    from raypipe.cli import app as cli

    d = deploy_app(EXAMPLES / "parallel-workflow")
    wid = httpx.post(f"{d.url}/api/workflow/stream/start", json={"totalSteps": 5}).json()[
        "workflowId"]
    result = CliRunner().invoke(
        cli, ["watch", "workflows", "active-workflows", wid, "--until-complete",
              "--app", str(EXAMPLES / "parallel-workflow")],
        env={"RAYPIPE_NAME": d.spec.settings.name, "COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert wid[:36] in result.output and "5/5" in result.output
