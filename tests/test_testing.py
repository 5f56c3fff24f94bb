"""raypipe.testing: each shipped example's workflow in-process, in seconds, with no Ray; the
fake clock (backoff, dead letters and replay, cron); what is pending when a run does not
settle; ``async with``; the ``raypipe_app`` fixture. The delivery guarantees on both runtimes
from one test body are in tests/runtime/test_guarantees.py (the ``g`` fixture)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raypipe.testing import PendingWorkError, TestApp

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
APPS = ROOT / "tests" / "apps"
ADMIN = {"x-raypipe-admin": "1"}


def test_the_seed_workflow_runs_in_process_in_seconds() -> None:
    t0 = time.monotonic()
    with TestApp(EXAMPLES / "parallel-workflow") as app:
        r = app.client.post("/api/workflow/start", json={"totalSteps": 10})
        assert r.status_code == 200, r.text
        wid = r.json()["workflowId"]
        app.run_until_idle()
        w = app.client.get(f"/api/workflow/{wid}").json()
        assert w["status"] == "completed" and w["completedSteps"] == 10
        assert sorted(w["steps"], key=int) == [str(i) for i in range(10)]
        assert w["results"]["completionRate"] == 100
        # The fan-in's completion handler fired once: one completion log line.
        done = [ln for ln in app.logs if ln["msg"] == "Workflow completed!"]
        assert len(done) == 1 and done[0]["step"] == "workflow-completion"
        [trace] = [t for t in app.traces if t["trace_id"] == done[0]["trace_id"]]
        assert {s["step"] for s in trace["spans"]} >= {
            "start-parallel-workflow", "process-workflow-step", "workflow-completion"}
        # Each attempt's span says how long it waited and how long its handler ran.
        attempts = [s for s in trace["spans"] if s["step"] == "process-workflow-step"]
        assert len(attempts) == 10 and all(s["queued_ms"] >= 0 and s["run_ms"] >= 0
                                           for s in attempts)
        assert app.client.get("/_raypipe/health").json()["checks"] == {
            "state": "ok", "dispatcher": "ok"}
    assert time.monotonic() - t0 < 10


def test_the_user_registration_example_runs_in_process() -> None:
    with TestApp(EXAMPLES / "user-registration") as app:
        r = app.client.post("/users/register", json={
            "name": "Alice Johnson", "email": "alice@example.com", "password": "securepass123"})
        assert r.status_code == 201, r.text
        user_id = r.json()["userId"]
        app.run_until_idle()
        status = app.client.get(f"/users/{user_id}/status").json()
        assert {k: status[k] for k in ("status", "emailSent", "accountSetup", "name")} == {
            "status": "active", "emailSent": True, "accountSetup": True,
            "name": "Alice Johnson"}
        assert app.state.get("notification-counts", user_id)["count"] == 1
        bad = app.client.post("/users/register", json={"name": "A", "email": "x",
                                                        "password": "1"})
        assert bad.status_code == 422


def test_the_motia_sdk_example_runs_in_process() -> None:
    with TestApp(EXAMPLES / "motia-sdk") as app:
        assert app.client.get("/greet", params={"name": "Ada"}).json()["first"] is True
        assert app.client.get("/greet", params={"name": "Bo"}).status_code == 200
        assert app.client.post("/farewell/Cy").status_code == 201
        app.run_until_idle()
        assert app.state.get("counts", "greeted") == {"n": 3}
        assert app.state.get("audit", "greeted") == {"seen": {"1": True, "2": True, "3": True}}
        assert app.streams.get("greetings", "default", "Ada")["message"] == "Hello, Ada!"
        assert app.client.get("/greetings/summary").json() == {"count": 3, "via": "http"}
        # Its 7-field cron fires every second: a second of fake time is one tick.
        assert app.state.get("summaries", "latest") is None
        app.advance(1)
        app.run_until_idle()
        assert app.state.get("summaries", "latest") == {"count": 3}
        # A streamed (SSE) response, whole.
        sse = app.client.post("/sse", content=b"colour=blue&size=3", headers={
            "content-type": "application/x-www-form-urlencoded"})
        events = [json.loads(line[6:]) for line in sse.text.splitlines()
                  if line.startswith("data: ")]
        assert events == [{"name": "colour", "value": "blue"},
                          {"name": "size", "value": "3"}, {"total": 2}]


def test_retries_dead_letters_and_replay_on_the_fake_clock() -> None:
    with TestApp(APPS / "guarantees") as app:
        # Fails twice, 300 ms then 600 ms of backoff (+-20%): passed on the fake clock.
        t0 = time.monotonic()
        app.enqueue("backoff", {"id": "b1"})
        app.run_until_idle()
        assert [app.state.get("backoff", f"b1:{a}") is not None for a in (1, 2, 3)] == [
            True] * 3
        assert app.clock.monotonic() >= 0.8 * (0.3 + 0.6)
        assert time.monotonic() - t0 < 0.5
        app.enqueue("doomed", {"id": "d1"})
        app.run_until_idle()
        [entry] = app.dead_letters.list()
        assert [e["attempt"] for e in entry["errors"]] == [1, 2, 3]
        assert "not fixed yet (attempt 3)" in entry["errors"][2]["error"]
        # The admin API, behind its guard, as the workbench calls it.
        fix = app.client.put("/_raypipe/api/state/flags/fixed", json=True, headers=ADMIN)
        assert fix.status_code == 200, fix.text
        assert app.dead_letters.replay(entry["id"]) == [entry["id"]]
        app.run_until_idle()
        assert app.state.get("doomed-done", "d1") == 4
        assert app.dead_letters.list() == []


def test_a_run_that_does_not_settle_names_what_is_pending() -> None:
    with TestApp(APPS / "guarantees") as app:
        app.enqueue("slow", {"id": "s1"})  # attempt 1 sleeps 10 s of real time
        with pytest.raises(PendingWorkError) as pending:
            app.run_until_idle(timeout=0.5)
        assert pending.value.pending == {"slow": 1}
        assert "slow: 1" in str(pending.value)


def test_a_cron_step_fires_once_per_tick_as_time_advances() -> None:
    with TestApp(APPS / "contract") as app:
        ticks = _cron_runs(app, "tick")  # every second: "* * * * * *"
        before = ticks()
        app.advance(60)
        app.run_until_idle()
        assert ticks() == before + 60
        app.run_until_idle()  # no time passed: no tick
        assert ticks() == before + 60
        app.advance(3)
        app.run_until_idle()
        assert ticks() == before + 63


def _cron_runs(app: TestApp, step: str) -> Callable[[], int]:
    def runs() -> int:
        return int(app.runtime.engine.stats()["steps"].get(step, {}).get("done", 0))
    return runs


async def test_async_with_gives_an_async_client_and_awaitables() -> None:
    async with TestApp(EXAMPLES / "parallel-workflow") as app:
        r = await app.client.post("/api/workflow/start", json={"totalSteps": 3})
        wid = r.json()["workflowId"]
        await app.run_until_idle()
        assert (await app.state.get("workflows", wid))["status"] == "completed"
        assert wid in [i["id"] for i in await app.state.items("workflows")]


def test_the_raypipe_app_fixture(raypipe_app: Callable[..., Any]) -> None:
    app = raypipe_app(EXAMPLES / "parallel-workflow", name="fixture-app")
    assert app.app.name == "fixture-app"
    assert app.client.get("/_raypipe/health").json()["app"] == "fixture-app"


def test_it_needs_no_ray() -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom raypipe.testing import TestApp\n"
            f"with TestApp({str(EXAMPLES / 'parallel-workflow')!r}) as app:\n"
            "    app.client.post('/api/workflow/start', json={'totalSteps': 2})\n"
            "    app.run_until_idle()\n"
            "print('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


_ = asyncio  # the async test runs on pytest-asyncio's loop


def test_every_example_in_docs_testing_md_runs(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's code, as a user copies it: plain blocks run from the repository's root,
    the pytest one through pytest with the plugin raypipe registers."""
    import re
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "testing.md").read_text(),
                        re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(ROOT)
    for block in blocks:
        if "def test_" in block:
            test = tmp_path / "test_guide.py"
            test.write_text(block)
            out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p",
                                  "no:cacheprovider", str(test)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stdout[-2000:]
        else:
            exec(compile(block, "docs/testing.md", "exec"), {})


def test_an_app_that_does_not_load_leaves_nothing_running(tmp_path: Path) -> None:
    import threading

    from raypipe.errors import AppLoadError

    (tmp_path / "broken_step.py").write_text("config = {'name': 'x'\n")
    before = threading.active_count()
    with pytest.raises(AppLoadError, match=r"broken_step\.py"), TestApp(tmp_path):
        pass
    assert threading.active_count() == before


def test_the_services_refuse_ids_that_cannot_be_stored_whoever_calls() -> None:
    """The CLI and the admin API reach the state and streams services without ctx.state's
    own check: the services check ids too."""
    from raypipe.errors import InvalidIdError
    from raypipe.runtime_protocols import Origin

    with TestApp(EXAMPLES / "parallel-workflow") as app:
        rt = app.runtime
        for call in (rt.state_service.set("g", "x" * 1025, 1, Origin("t")),
                     rt.state_service.get("bad\ud800", "k"),
                     rt.state_service.list("g" * 1025),
                     rt.streams.set("workflows", "g", "i" * 2000, {}, Origin("t"))):
            with pytest.raises(InvalidIdError):
                app._call(call)
        assert app.state.list_groups() == []


def test_the_image_pipeline_example_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_MODEL_MB", "2")
    with TestApp(EXAMPLES / "image-pipeline") as app:
        r = app.client.post("/jobs", json={"images": 70, "size": 48})
        assert r.status_code == 202, r.text
        job = r.json()["jobId"]
        app.run_until_idle()
        assert app.client.get(f"/jobs/{job}").json() == {
            "total": 70, "done": 70, "status": "completed"}
        assert len(app.state.list(f"norms-{job}")) == 70
        # Two chunks' pixels went by reference, and went with the job.
        assert app.objects.stats() == {"objects": 0, "bytes": 0}
        assert app.streams.get("jobs", "all", job) == {
            "id": job, "total": 70, "done": 70, "status": "completed"}
