"""Delivery guarantees on real Ray: retries and backoff, dead letters and replay, time limits,
FIFO groups, concurrency limits, effectively-once effects, worker crashes."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from raypipe.runtime.bridge import MOST_PER_CALL
from tests.conftest import EXAMPLES, Deploy, wait_for

APPS = Path(__file__).resolve().parent.parent / "apps"
APP = APPS / "guarantees"
#: What the workbench sends with an admin write (docs/security.md).
ADMIN = {"x-raypipe-admin": "1"}


class Running:
    def __init__(self, deployment: Any) -> None:
        from raypipe.loader import load_app_cached
        from raypipe.runtime.bridge import runtime_for

        self.d = deployment
        self.spec = deployment.spec
        self.app = load_app_cached(self.spec.root, self.spec.settings)
        self.rt = runtime_for(self.spec)

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def send(self, topic: str, messages: list[dict[str, Any]],
             group: Any = None) -> None:
        from raypipe.enqueue import publish

        async def go() -> None:
            await asyncio.gather(*(publish(self.app, self.rt, topic, m, trace_id="t",
                                           group_id=group(m) if group else None)
                                   for m in messages))

        self.run(go())

    def get(self, group: str, key: str) -> Any:
        return self.run(self.rt.state.get(group, key))

    def items(self, group: str) -> dict[str, Any]:
        return {i["id"]: i["data"] for i in self.run(self.rt.state.list(group))}

    def stats(self) -> dict[str, Any]:
        """Every dispatcher shard's, as one."""
        return self.run(self.rt.stats())  # type: ignore[no-any-return]

    def dead_letter(self, matches: Callable[[Any], bool], timeout: float = 30) -> Any:
        """The one dead letter whose payload ``matches``, once it is there."""
        def found() -> list[Any]:
            return [e for e in httpx.get(f"{self.d.url}/_raypipe/dlq").json()
                    if matches(e["payload"])]

        [entry] = wait_for(found, timeout=timeout, message="the dead letter")
        return entry

    def step_stats(self, step: str) -> dict[str, int]:
        return self.stats()["steps"].get(step, {})  # type: ignore[no-any-return]


    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.d.url + path, **kwargs)


class LocalRunning(Running):
    """The same scenarios on :class:`raypipe.testing.TestApp`: the engine, state and streams
    services and triggers in-process. Each read first runs the app until nothing is in
    flight (the fake clock moves on through backoffs), so the scenarios' polls see what a
    settled run left."""

    def __init__(self, test_app: Any) -> None:
        self.t = test_app
        self.app = test_app.app
        self.rt = test_app.runtime

    def run(self, coro: Any) -> Any:
        return self.t._wait(coro)

    def get(self, group: str, key: str) -> Any:
        self.t.run_until_idle(timeout=120)
        return super().get(group, key)

    def items(self, group: str) -> dict[str, Any]:
        self.t.run_until_idle(timeout=120)
        return super().items(group)

    def stats(self) -> dict[str, Any]:
        self.t.run_until_idle(timeout=120)
        return super().stats()

    def dead_letter(self, matches: Callable[[Any], bool], timeout: float = 30) -> Any:
        self.t.run_until_idle(timeout=timeout)
        [entry] = [e for e in self.t.dead_letters.list() if matches(e["payload"])]
        return entry

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.t.client.request(method, path, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def on_ray(request: pytest.FixtureRequest) -> Any:
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    port = request.getfixturevalue("ray_session")
    spec = AppSpec.from_dir(APP, name="guarantees-tests", port=port, dev=True,
                            route_prefix="/guarantees")
    yield Running(deploy(spec))
    teardown(spec)


@pytest.fixture(scope="module")
def on_ray_sharded(request: pytest.FixtureRequest) -> Any:
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    port = request.getfixturevalue("ray_session")
    spec = AppSpec.from_dir(APP, name="guarantees-k3", port=port, dev=True,
                            route_prefix="/guarantees-k3", shards=3)
    yield Running(deploy(spec))
    teardown(spec)


@pytest.fixture(scope="module", params=["ray", "local", "ray-k3", "local-k3"])
def g(request: pytest.FixtureRequest) -> Any:
    """The app on Ray, and the same app on raypipe.testing, each with one shard and with
    three: a scenario that takes ``g`` runs on all four, from one test body."""
    if request.param == "ray":
        yield request.getfixturevalue("on_ray")
        return
    if request.param == "ray-k3":
        yield request.getfixturevalue("on_ray_sharded")
        return
    from raypipe.testing import TestApp

    shards = 3 if request.param == "local-k3" else 1
    with TestApp(APP, settings={"name": f"guarantees-local-{shards}",
                                "shards": shards}) as test_app:
        yield LocalRunning(test_app)


def test_retries_follow_the_backoff(on_ray: Running) -> None:
    on_ray.send("backoff", [{"id": "b1"}])
    times = wait_for(lambda: (t := [on_ray.get("backoff", f"b1:{a}") for a in (1, 2, 3)])
                     and all(t) and t, timeout=30, message="three attempts")
    gap1, gap2 = times[1] - times[0], times[2] - times[1]
    # 300 ms then 600 ms, each +-20% jitter, plus the time to run an attempt.
    assert 0.24 <= gap1 <= 0.65, gap1
    assert 0.48 <= gap2 <= 1.0, gap2
    assert gap2 > gap1
    assert on_ray.step_stats("backoff")["retries"] == 2


def test_dead_letter_then_replay_after_the_fix(on_ray: Running) -> None:
    from raypipe.cli import app as cli

    on_ray.send("doomed", [{"id": "d1"}])
    url = on_ray.d.url

    entry = on_ray.dead_letter(lambda p: p == {"id": "d1"})
    assert entry["step"] == "doomed" and entry["trace_id"] == "t"
    assert [e["attempt"] for e in entry["errors"]] == [1, 2, 3]  # 1 + max_retries
    assert "ValueError: not fixed yet (attempt 3)" in entry["errors"][2]["error"]
    full = httpx.get(f"{url}/_raypipe/dlq/{entry['id']}").json()
    assert "Traceback" in full["errors"][0]["traceback"]

    runner = CliRunner()
    app_dir = ["--app", str(APP)]
    env = {"RAYPIPE_NAME": on_ray.spec.settings.name}
    listed = runner.invoke(cli, ["dlq", "list", *app_dir], env=env)
    assert entry["id"] in listed.output and "attempts=3" in listed.output
    shown = runner.invoke(cli, ["dlq", "show", entry["id"], *app_dir], env=env)
    assert json.loads(shown.stdout)["payload"] == {"id": "d1"}

    # Fix the cause, then replay: the same delivery, with fresh attempts numbered on.
    on_ray.run(on_ray.rt.state.set("flags", "fixed", True, _origin()))
    replayed = runner.invoke(cli, ["dlq", "replay", entry["id"], *app_dir], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == {"replayed": [entry["id"]]}
    assert wait_for(lambda: on_ray.get("doomed-done", "d1"), timeout=30, message="replay") == 4
    assert httpx.get(f"{url}/_raypipe/dlq/{entry['id']}").status_code == 404
    again = runner.invoke(cli, ["dlq", "replay", entry["id"], *app_dir], env=env)
    assert again.exit_code == 1
    assert httpx.post(f"{url}/_raypipe/dlq/nope/replay", headers=ADMIN).status_code == 404


def test_a_replay_applies_nothing_its_failed_attempts_applied(g: Running) -> None:
    """The state update, the stream write and the enqueue made before the failure count once,
    through two failed attempts and the replay that succeeds."""
    g.send("replayable", [{"id": "r1"}])

    entry = g.dead_letter(lambda p: p == {"id": "r1"})
    assert len(entry["errors"]) == 2
    wait_for(lambda: g.get("replay-after", "r1"), timeout=30, message="the enqueued message")
    streams = g.rt.streams
    assert g.get("replay-counts", "r1") == {"n": 1}
    assert g.run(streams.get("tallies", "replay", "r1")) == {"n": 1, "id": "r1"}
    g.run(g.rt.state.set("flags", "replayable-fixed", True, _origin()))
    r = g.http("POST", f"/_raypipe/dlq/{entry['id']}/replay", headers=ADMIN)
    assert r.json() == {"replayed": [entry["id"]]}
    assert wait_for(lambda: g.get("replayable-done", "r1"), timeout=30, message="replay") == 3
    assert wait_for(lambda: g.stats()["in_flight"] == 0, timeout=30, message="nothing in flight")
    assert g.get("replay-counts", "r1") == {"n": 1}
    assert g.run(streams.get("tallies", "replay", "r1")) == {"n": 1, "id": "r1"}
    assert g.get("replay-after", "r1") == {"n": 1}
    assert g.step_stats("replay-after")["done"] == 1


def test_an_exiting_handler_runs_once_per_attempt(g: Running, tmp_path: Path) -> None:
    """No retry hides under raypipe's attempts: max_retries=1 is exactly two runs of a
    handler that calls sys.exit, and the dead letter says how it ended."""
    _exits(g, tmp_path, hard=False)


def test_a_handler_that_ends_its_process_runs_once_per_attempt(on_ray: Running,
                                                               tmp_path: Path) -> None:
    """os._exit ends the worker process itself (on Ray only: in-process it would end the
    test): still two runs, and the dead letter says the worker died."""
    _exits(on_ray, tmp_path, hard=True)


def _exits(g: Running, tmp_path: Path, *, hard: bool) -> None:
    runs = tmp_path / "runs.txt"
    before = g.step_stats("exiting")
    g.send("exits", [{"runs": str(runs), "hard": hard}])

    entry = g.dead_letter(lambda p: p.get("runs") == str(runs), timeout=60)
    assert [line.split()[0] for line in runs.read_text().splitlines()] == ["1", "2"]
    errors = [e["error"] for e in entry["errors"]]
    assert {e["cause"] for e in entry["errors"]} == {"crash"}
    if hard:
        assert all("worker process died" in e for e in errors), errors
    else:
        assert all("exited with code 3" in e for e in errors), errors
    after = g.step_stats("exiting")
    assert after["failed_attempts"] - before.get("failed_attempts", 0) == 2
    assert after["crashes"] - before.get("crashes", 0) == 2
    assert after["retries"] - before.get("retries", 0) == 1
    assert after["attempts"] - before.get("attempts", 0) == 2


def test_a_large_item_written_by_a_delivery_sends_its_values_only_when_read(
        on_ray: Running) -> None:
    n = 400
    on_ray.send("big-item", [{"id": "b", "i": i} for i in range(n)])
    wait_for(lambda: len((on_ray.get("big", "b") or {}).get("entries", {})) == n, timeout=60,
             message="every entry")
    on_ray.send("big-item", [{"id": "b", "i": n, "read": True}])
    read = wait_for(lambda: on_ray.get("big-read", "b"), timeout=60, message="the read")
    assert read == {"old": n, "new": n + 1, "same": True}


def _origin() -> Any:
    from raypipe.runtime_protocols import Origin

    return Origin("test")


def test_burst_with_random_failures_reconciles_exactly(g: Running) -> None:
    n = 2000
    g.send("chaos", [{"i": i} for i in range(n)])

    def settled() -> Any:
        s = g.step_stats("chaos")
        return s if s.get("done", 0) + s.get("dead_lettered", 0) == n else None

    s = wait_for(settled, timeout=300, interval=1, message=f"{n} messages to settle")
    time.sleep(0.5)
    s = g.step_stats("chaos")
    assert s["accepted"] == n
    assert s["done"] + s.get("dead_lettered", 0) == n
    assert s["failed_attempts"] > n * 0.1  # the failures really happened
    dead = {e["payload"]["i"] for e in g.run(g.rt.dead_letters.list())
            if e["step"] == "chaos"}
    assert len(dead) == s.get("dead_lettered", 0)
    counted = g.items("chaos")
    # No effect applied twice, however often its delivery was retried...
    assert all(v == {"n": 1} for v in counted.values())
    # ... and every message that was not dead-lettered has its effect.
    assert {int(k) for k in counted} >= set(range(n)) - dead


def test_seed_workflow_whose_steps_fail_after_their_update(deploy_app: Deploy,
                                                          tmp_path: Path) -> None:
    app_dir = tmp_path / "parallel-workflow"
    shutil.copytree(EXAMPLES / "parallel-workflow", app_dir)
    step = app_dir / "steps" / "process_step_step.py"
    step.write_text(step.read_text() + (
        "\n\n_original = handler\n\n\n"
        "async def handler(input, ctx):\n"
        "    await _original(input, ctx)\n"
        "    if ctx.attempt == 1:\n"
        "        raise RuntimeError('fails once, after its state update')\n"))
    (app_dir / "steps" / "count_completed_step.py").write_text(
        "from raypipe import StepConfig, queue\n"
        "config = StepConfig(name='count-completed', triggers=[queue('workflow.completed')])\n"
        "async def handler(msg, ctx):\n"
        "    await ctx.state.update('completions', msg['workflowId'],"
        " [{'type': 'increment', 'path': 'n'}])\n")
    (app_dir / "steps" / "process_step_step.py").write_text(
        step.read_text().replace('queue("workflow.step.process", input=StepInput)',
                                 'queue("workflow.step.process", input=StepInput, '
                                 'config=QueueConfig(backoff_delay_ms=50))')
        .replace("from raypipe import FlowContext, StepConfig, queue",
                 "from raypipe import FlowContext, QueueConfig, StepConfig, queue"))
    d = deploy_app(app_dir)
    wid = httpx.post(f"{d.url}/api/workflow/start", json={"totalSteps": 20},
                     timeout=60).json()["workflowId"]

    def completed() -> Any:
        w = httpx.get(f"{d.url}/api/workflow/{wid}").json()
        return w if w.get("status") == "completed" else None

    w = wait_for(completed, timeout=120, message="the workflow "
                 f"{httpx.get(f'{d.url}/api/workflow/{wid}').json()}")
    assert w["completedSteps"] == w["totalSteps"] == 20
    time.sleep(1.5)
    w = httpx.get(f"{d.url}/api/workflow/{wid}").json()
    assert w["completedSteps"] == 20
    from raypipe.runtime.bridge import runtime_for

    rt = runtime_for(d.spec)
    assert asyncio.run(rt.state.get("completions", wid)) == {"n": 1}
    import ray

    stats = ray.get(rt.dispatcher.stats.remote())["steps"]
    assert stats["process-workflow-step"]["retries"] == 20
    assert stats["workflow-completion"]["accepted"] == 1


def test_fifo_groups_keep_order_across_retries(g: Running) -> None:
    # 1,100 messages sent in one turn: on Ray they go to the dispatcher in two parts
    # (bridge.MOST_PER_CALL), each group's split between them, and keep their order.
    groups, per_group = 5, 220
    messages = [{"group": f"g{k}", "seq": s} for s in range(per_group) for k in range(groups)]
    assert MOST_PER_CALL < len(messages) < 2 * MOST_PER_CALL
    g.send("fifo", messages, group=lambda m: m["group"])
    wait_for(lambda: all(len((g.get("fifo", f"g{k}") or {}).get("seq", [])) == per_group
                         for k in range(groups)), timeout=240, interval=0.5,
             message="every FIFO group")
    spans = {}
    for k in range(groups):
        item = g.get("fifo", f"g{k}")
        assert item["seq"] == list(range(per_group)), f"group g{k} out of order"
        spans[k] = item["spans"]
        # One at a time within a group: each delivery started after the previous ended.
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(item["spans"]))
    # Different groups ran in parallel: some spans of different groups overlap.
    overlaps = sum(1 for a in spans[0] for b in spans[1] if a[0] < b[1] and b[0] < a[1])
    assert overlaps > 0


def test_concurrency_limit_is_never_exceeded(g: Running) -> None:
    g.send("limited", [{"i": i} for i in range(16)])
    spans = wait_for(lambda: len(s := g.items("limited")) == 16 and list(s.values()),
                     timeout=60, message="16 limited deliveries")
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans],
                    key=lambda e: (e[0], e[1]))
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_sigkilled_worker_is_redelivered(on_ray: Running) -> None:
    on_ray.send("killer", [{"id": "k1"}])
    survivor = wait_for(lambda: on_ray.get("survived", "k1"), timeout=60, message="redelivery")
    assert survivor != on_ray.get("killed", "k1")  # another process finished it
    assert on_ray.step_stats("killer")["done"] == 1


def test_visibility_timeout_cancels_an_overrunning_attempt(on_ray: Running) -> None:
    t0 = time.time()
    on_ray.send("slow", [{"id": "s1"}])
    item = wait_for(lambda: (v := on_ray.get("slow", "s1")) and "done" in v and v, timeout=30,
                    message="the second attempt")
    # Attempt 2 repeated attempt 1's first write: deduplicated, so "started" holds one entry.
    assert item == {"started": [1], "done": 2}
    assert time.time() - t0 < 8  # the 10 s sleep of attempt 1 was cut short
    assert on_ray.step_stats("slow")["failed_attempts"] == 1


def test_delay_seconds_delays_delivery(on_ray: Running) -> None:
    t0 = time.time()
    on_ray.send("delayed", [{"id": "x"}])
    at = wait_for(lambda: on_ray.get("delayed", "x"), timeout=30, message="the delayed message")
    assert at - t0 >= 1.0


def test_raising_queue_condition_is_false_not_a_failure(g: Running) -> None:
    g.send("cond", [{"any": 1}])
    wait_for(lambda: g.step_stats("bad-condition").get("done") == 1, timeout=30,
             message="the skipped delivery")
    assert g.get("cond", "ran") is None
    assert not g.step_stats("bad-condition").get("failed_attempts")


def test_a_trace_counts_as_one_workflow_when_its_last_delivery_settles(
        deploy_app: Deploy) -> None:
    """20 tasks fanned out by one request plus the completion their last write triggers: one
    workflow, counted when nothing of its trace is left in flight (never early)."""
    import ray

    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(APPS / "faults")
    rt = runtime_for(d.spec)
    for expected in (1, 2):
        r = httpx.post(f"{d.url}/runs", json={"n": 20, "sleep_ms": 50}, timeout=60)
        assert r.status_code == 202, r.text
        rid = r.json()["run"]
        wait_for(lambda rid=rid: asyncio.run(rt.state.get("completions", rid)), timeout=60,
                 message="the run's completion")

        def counted() -> Any:
            s = ray.get(rt.dispatcher.stats.remote())
            return s["in_flight"] == 0 and s["steps"]["*"]

        totals = wait_for(counted, timeout=30, message="the run's trace to settle")
        assert totals.get("workflows_completed") == expected
        assert not totals.get("workflows_dead_lettered")
    # The fan-outs ran in batches: fewer tasks than deliveries, every delivery done.
    tasks = ray.get(rt.dispatcher.stats.remote())["steps"]["task"]
    assert tasks["done"] == 40 and 2 <= tasks["tasks"] < 40
