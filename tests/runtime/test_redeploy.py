"""Deploys that never take the app down: a redeploy with changed code while a workflow runs,
and redeploys that fail their checks (a dead state backend, a clashing route prefix, a
change of state backend, a step no node can run), on the session's real Ray and Serve."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from raypipe import constants
from raypipe.errors import DeployError
from raypipe.runtime.deploy import deploy, teardown
from raypipe.runtime.spec import AppSpec
from tests.conftest import APPS, wait_for


@pytest.fixture
def app_copy(tmp_path: Path, ray_session: int) -> Any:
    root = tmp_path / "versions"
    shutil.copytree(APPS / "versions", root)
    specs: list[AppSpec] = []
    name = f"versions-{uuid.uuid4().hex[:8]}"

    def spec(**overrides: Any) -> AppSpec:
        s = AppSpec.from_dir(root, name=name, port=ray_session, dev=True,
                             route_prefix=f"/{name}", **overrides)
        specs.append(s)
        return s

    yield root, spec
    if specs:
        teardown(specs[-1])


class Poller(threading.Thread):
    """GET ``url`` in a loop until stopped, counting the answers (or errors) it got."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.seen, self._stop_event = url, Counter[str](), threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop_event.is_set():
                try:
                    self.seen[str(client.get(self.url).status_code)] += 1
                except httpx.HTTPError as exc:
                    self.seen[type(exc).__name__] += 1

    def stop(self) -> Counter[str]:
        self._stop_event.set()
        self.join(timeout=60)
        return self.seen


def _run(url: str, run: str) -> Any:
    return httpx.get(f"{url}/runs/{run}", timeout=30).json()


def test_a_redeploy_mid_workflow_runs_new_code_loses_nothing_and_answers_throughout(
        app_copy: Any) -> None:
    root, spec = app_copy
    first = spec()
    d = deploy(first)
    run = httpx.post(f"{d.url}/runs", json={"n": 2000}, timeout=120).json()["run"]
    wait_for(lambda: _run(d.url, run)["done"] >= 100, timeout=120, message="the run under way")
    poller = Poller(f"{d.url}/runs/{run}")
    poller.start()
    work = root / "steps" / "work_step.py"
    work.write_text(work.read_text().replace('MARK = "v1"', 'MARK = "v2"'))
    second = spec()
    assert second.version != first.version
    deploy(second)
    wait_for(lambda: _run(d.url, run)["done"] == 2000, timeout=300,
             message=lambda: f"the run to finish: {_run(d.url, run)}")
    seen = poller.stop()
    state = _run(d.url, run)
    assert state["done"] == 2000
    marks = state["by_mark"]
    assert marks.get("v1", 0) + marks.get("v2", 0) == 2000, marks
    assert marks.get("v2", 0) > 0 and marks.get("v1", 0) > 0, marks  # new deliveries, new code
    assert set(seen) == {"200"}, seen  # no 5xx, no refused connection, while it was replaced
    dispatcher = ray.get_actor(constants.DISPATCHER_ACTOR, namespace=second.namespace)
    stats = ray.get(dispatcher.stats.remote())
    assert stats["version"] == second.version and stats["in_flight"] == 0
    health = httpx.get(f"{d.url}/_raypipe/health").json()
    assert health["version"] == second.version
    assert health["checks"] == {"state": "ok", "dispatcher": "ok"}


def test_failed_redeploys_leave_the_running_app_serving(app_copy: Any, redis_url: str,
                                                        ray_session: int) -> None:
    root, spec = app_copy
    good = spec()
    d = deploy(good)
    run = httpx.post(f"{d.url}/runs", json={"n": 10}, timeout=60).json()["run"]
    wait_for(lambda: _run(d.url, run)["done"] == 10, timeout=60, message="the first run")

    with pytest.raises(DeployError) as dead:
        deploy(spec(state="redis://127.0.0.1:1/0"), change_state=True)
    assert dead.value.cause == "state" and "does not answer" in str(dead.value)
    with pytest.raises(DeployError) as moved:
        deploy(spec(state=redis_url))
    assert moved.value.cause == "state_change" and "--change-state" in str(moved.value)
    (root / "steps" / "tpu_step.py").write_text(
        "from raypipe import RayOptions, StepConfig, queue\n"
        "config = StepConfig(name='tpu', triggers=[queue('tpu')],\n"
        "                    ray=RayOptions(resources={'TPU': 4}))\n"
        "async def handler(msg, ctx): ...\n")
    with pytest.raises(DeployError) as unschedulable:
        deploy(spec())
    assert unschedulable.value.cause == "schedulable" and "'tpu'" in str(unschedulable.value)
    (root / "steps" / "tpu_step.py").unlink()
    # Another app on this app's prefix is refused, not left to capture its traffic.
    clash = AppSpec.from_dir(APPS / "versions", name=f"clash-{good.settings.name}",
                             port=ray_session, dev=True, route_prefix=good.settings.route_prefix)
    with pytest.raises(DeployError) as taken:
        deploy(clash)
    assert taken.value.cause == "route_prefix"

    # Through all of it the first deployment served, and still runs workflows.
    assert httpx.get(f"{d.url}/_raypipe/health").status_code == 200
    run = httpx.post(f"{d.url}/runs", json={"n": 10}, timeout=60).json()["run"]
    wait_for(lambda: _run(d.url, run)["done"] == 10, timeout=60, message="a run afterwards")
    assert _run(d.url, run)["by_mark"] == {"v1": 10}


def test_a_deploy_whose_replica_cannot_start_says_so(tmp_path: Path, ray_session: int) -> None:
    """The deploy waits for the app's own health route, not Serve's status polls: a replica
    that never starts must still fail the deploy with Serve's reason, not leave it waiting."""
    root = tmp_path / "replica-fails"
    (root / "steps").mkdir(parents=True)
    # Loads in the driver and the actors (preflight passes); only a Serve replica refuses it.
    (root / "steps" / "hello_step.py").write_text(
        "from ray import serve\n"
        "from raypipe import StepConfig, http\n"
        "try:\n"
        "    serve.get_replica_context()\n"
        "except Exception:\n"
        "    pass\n"
        "else:\n"
        "    raise RuntimeError('this app refuses to load in a replica')\n"
        "config = StepConfig(name='hello', triggers=[http('GET', '/hello')])\n"
        "async def handler(req, ctx):\n"
        "    return {'status': 200, 'body': 'hi'}\n")
    name = f"replica-fails-{uuid.uuid4().hex[:8]}"
    spec = AppSpec.from_dir(root, name=name, port=ray_session, dev=True,
                            route_prefix=f"/{name}")
    try:
        with pytest.raises(RuntimeError) as failed:
            deploy(spec)
        assert "refuses to load in a replica" in str(failed.value)
        assert constants.serve_app_name(name) in str(failed.value)
    finally:
        teardown(spec)
