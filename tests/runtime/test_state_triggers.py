"""State triggers on real Ray: what they see, in which order, and what they ignore."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Deploy, wait_for

APP = Path(__file__).resolve().parent.parent / "apps" / "triggers"


@pytest.fixture(scope="module")
def triggers_app(ray_session: int) -> Any:
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    spec = AppSpec.from_dir(APP, name="trigger-tests", port=ray_session, dev=True)
    deploy(spec)
    yield runtime_for(spec), spec
    teardown(spec)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def seen(rt: Any, key: str) -> list[dict[str, Any]]:
    value = run(rt.state.get("seen", key))
    return value["events"] if value else []


def test_created_updated_deleted_in_commit_order(triggers_app: Any) -> None:
    from raypipe.runtime_protocols import Origin

    rt, _ = triggers_app
    origin = Origin("trace-1", None)
    run(rt.state.set("watched", "a", {"n": 0}, origin))
    for _ in range(20):
        run(rt.state.update("watched", "a", [{"type": "increment", "path": "n"}], origin))
    run(rt.state.set("watched", "a", {"n": 20}, origin))  # no change: no trigger
    run(rt.state.delete("watched", "a", origin))
    events = wait_for(lambda: len(seen(rt, "a")) >= 22 and seen(rt, "a"), timeout=60,
                      message="22 state trigger deliveries")
    time.sleep(1)
    events = seen(rt, "a")
    assert len(events) == 22
    kinds = sorted(e["type"] for e in events)
    assert kinds == ["created"] + ["deleted"] + ["updated"] * 20
    # Each update saw the value the previous commit left: a gapless chain 0 -> 20.
    updates = sorted((e["old"]["n"], e["new"]["n"]) for e in events if e["type"] == "updated")
    assert updates == [(i, i + 1) for i in range(20)]
    deleted = next(e for e in events if e["type"] == "deleted")
    assert deleted["old"] == {"n": 20} and deleted["new"] is None
    assert {e["trace"] for e in events} == {"trace-1"}


def test_group_filter_and_raising_condition(triggers_app: Any) -> None:
    from raypipe.runtime_protocols import Origin

    rt, _ = triggers_app
    run(rt.state.set("elsewhere", "b", 1, Origin("t")))
    run(rt.state.set("watched", "c", 1, Origin("t")))
    wait_for(lambda: seen(rt, "c"), timeout=30, message="the watched change")
    time.sleep(0.5)
    assert seen(rt, "b") == []
    # The broken condition never let its handler run, and the actor still answers.
    assert run(rt.state.list("broken-ran")) == []
    assert run(rt.state.get("watched", "c")) == 1


def test_queue_condition_gets_input_and_ctx(triggers_app: Any) -> None:
    from raypipe.enqueue import publish
    from raypipe.loader import load_app_cached

    rt, spec = triggers_app
    app = load_app_cached(spec.root, spec.settings)

    async def send() -> None:
        for n in range(6):
            await publish(app, rt, "numbers", {"n": n}, trace_id="t")

    run(send())
    wait_for(lambda: len(run(rt.state.list("gated"))) == 3, timeout=30, message="even numbers")
    time.sleep(0.5)
    assert run(rt.state.list("gated")) == [
        {"id": "0", "data": "numbers"}, {"id": "2", "data": "numbers"},
        {"id": "4", "data": "numbers"}]


def test_two_apps_never_collide(deploy_app: Deploy, triggers_app: Any) -> None:
    """Each app's actors live in its own namespace: state written in one is not in another."""
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime_protocols import Origin

    rt, _ = triggers_app
    run(rt.state.set("isolation", "x", "mine", Origin("t")))
    other = deploy_app(APP, route_prefix="/other")
    assert run(runtime_for(other.spec).state.get("isolation", "x")) is None
    assert run(rt.state.get("isolation", "x")) == "mine"
