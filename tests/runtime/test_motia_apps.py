"""Motia apps as Motia wrote them, unchanged, on real Ray and Serve: a 0.x-style app
(tests/apps/motia-0x) and a 1.x SDK app (examples/motia-sdk), driven over HTTP with their
downstream queue, state, stream and cron steps checked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from raypipe.runtime.bridge import runtime_for
from tests.conftest import APPS, EXAMPLES, Deploy, wait_for


def _state(d: Any, group: str, key: str) -> Any:
    return asyncio.run(runtime_for(d.spec).state.get(group, key))


def _stream(d: Any, name: str, group: str, item: str) -> Any:
    return asyncio.run(runtime_for(d.spec).streams.get(name, group, item))


def test_a_motia_0x_app_runs_unchanged(deploy_app: Deploy) -> None:
    d = deploy_app(APPS / "motia-0x")
    r = httpx.post(f"{d.url}/greetings/ada?x=1", json={"mood": "sunny"}, timeout=60)
    assert r.status_code == 201, r.text
    body = r.json()
    # .env loaded (GREETING_PREFIX), a relative import, a dict-style request and middleware
    # that added a key; the stream's set returned the item as 0.x did.
    assert body["item"] == {"id": "one", "text": "Howdy, ada!"}
    assert body["enriched"] == "yes" and r.headers["x-enriched"] == "yes"
    assert body["query"] == {"x": "1"}
    assert json.loads(body["raw"]) == {"mood": "sunny"}
    # The un-awaited set calls were made before the response went out.
    assert _state(d, "greetings", "ada") == {"name": "ada", "mood": "sunny"}
    assert _stream(d, "greetings", "all", "ada") == {"id": "ada", "text": "Howdy, ada!"}
    # A plain def event handler downstream, its ctx calls synchronous.
    wait_for(lambda: _state(d, "seen", "ada") == {"n": 1}, timeout=60, message="Seen ran")

    # The static route wins over /greetings/:name; get_group returns the values; the response
    # off its schema and the undeclared emit are warnings, as in Motia.
    s = httpx.get(f"{d.url}/greetings/summary", timeout=60)
    assert s.status_code == 200, s.text
    assert s.json() == {"names": ["ada"]}
    wait_for(lambda: _state(d, "seen", "<undeclared>") == {"n": 1}, timeout=60,
             message="the undeclared topic delivered")
    # A context-only cron handler, 6 fields (every second), with the .env's quoted value.
    wait_for(lambda: _state(d, "ticks", "last") == {"title": "Motia 0.x style"}, timeout=60,
             message="the cron tick")


def test_strict_makes_a_motia_app_fail_fast(deploy_app: Deploy) -> None:
    d = deploy_app(APPS / "motia-0x", strict=True)
    s = httpx.get(f"{d.url}/greetings/summary", timeout=60)
    assert s.status_code == 500


def test_the_motia_sdk_example_runs_unchanged(deploy_app: Deploy) -> None:
    d = deploy_app(EXAMPLES / "motia-sdk")
    g = httpx.get(f"{d.url}/greet", params={"name": "Ada"}, timeout=60)
    assert g.status_code == 200, g.text
    # Stream.set answers Motia 1.x's {new_value, old_value}.
    assert g.json() == {"greeting": {"id": "Ada", "name": "Ada", "message": "Hello, Ada!"},
                        "first": True}
    assert httpx.get(f"{d.url}/greet", params={"name": "Bo"}, timeout=60).status_code == 200
    listed = httpx.get(f"{d.url}/greetings", timeout=60).json()
    assert listed["greetings"] == ["Ada", "Bo"]
    assert httpx.get(f"{d.url}/greetings/Bo", timeout=60).json()["message"] == "Hello, Bo!"
    assert httpx.get(f"{d.url}/greetings/nobody", timeout=60).status_code == 404
    summary = httpx.get(f"{d.url}/greetings/summary", timeout=60)
    assert summary.json() == {"count": 2, "via": "http"}, summary.text
    # The SDK's earliest style: ctx.state, ctx.streams[...] and ctx.enqueue.
    f = httpx.post(f"{d.url}/farewell/Cy", timeout=60)
    assert f.status_code == 201, f.text
    assert f.json() == {"stored": {"name": "Cy"},
                        "item": {"id": "Cy", "name": "Cy", "message": "Bye, Cy!"}}

    # The module-level enqueue reached the one-argument queue handler; its stateManager
    # update fired the state step, built with step(config).handle(handler).
    wait_for(lambda: (_state(d, "counts", "greeted") or {}).get("n") == 3, timeout=60,
             message="all three greetings counted")
    assert _state(d, "last-greeted", "name")["name"] in ("Ada", "Bo", "Cy")
    wait_for(lambda: _state(d, "audit", "greeted") == {"seen": {"1": True, "2": True,
                                                                 "3": True}},
             timeout=60, message="the state step's audit of every change")
    # The 7-field cron ran the same handler's cron branch.
    wait_for(lambda: _state(d, "summaries", "latest") == {"count": 3}, timeout=60,
             message="the cron summary")


def test_an_sse_step_streams_its_events(deploy_app: Deploy) -> None:
    d = deploy_app(EXAMPLES / "motia-sdk")
    with httpx.stream("POST", f"{d.url}/sse", content=b"colour=blue&size=3",
                      headers={"content-type": "application/x-www-form-urlencoded"},
                      timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert [json.loads(e[6:]) for e in events] == [
        {"name": "colour", "value": "blue"}, {"name": "size", "value": "3"}, {"total": 2}]
