"""CLI commands against a running app, and `raypipe dev` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from raypipe.cli import app
from tests.conftest import EXAMPLES, ROOT, Deploy, alive, descendants, free_port, wait_for

runner = CliRunner()
CONTRACT = Path(__file__).resolve().parent.parent / "apps" / "contract"


@pytest.fixture(scope="module")
def running(ray_session: int, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The contract app deployed under a unique name; the CLI finds it by its pyproject."""
    import shutil

    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    app_dir = tmp_path_factory.mktemp("cli") / "contract"
    shutil.copytree(CONTRACT, app_dir)
    (app_dir / "pyproject.toml").write_text('[tool.raypipe]\nname = "cli-contract"\n'
                                            'route_prefix = "/cli"\n')
    spec = AppSpec.from_dir(app_dir, port=ray_session, dev=True)
    d = deploy(spec)
    yield app_dir, d
    teardown(spec)


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_state_set_get_list_delete(running: Any) -> None:
    app_dir, _ = running
    a = str(app_dir)
    assert cli("state", "set", "g", "k", '{"n": 1}', "--app", a).exit_code == 0
    got = cli("state", "get", "g", "k", "--app", a)
    assert got.exit_code == 0 and json.loads(got.stdout) == {"n": 1}
    assert "g" in json.loads(cli("state", "list", "--app", a).stdout)
    assert json.loads(cli("state", "list", "g", "--app", a).stdout) == [
        {"id": "k", "data": {"n": 1}}]
    assert json.loads(cli("state", "delete", "g", "k", "--app", a).stdout) == {"n": 1}
    missing = cli("state", "get", "g", "k", "--app", a)
    assert missing.exit_code == 1 and "no item" in missing.output
    gone = cli("state", "delete", "g", "k", "--app", a)
    assert gone.exit_code == 1 and "no item" in gone.output


def test_enqueue_delivers_and_validates(running: Any) -> None:
    app_dir, d = running
    a = str(app_dir)
    ok = cli("enqueue", "counter.incr", '{"key": "cli"}', "--app", a)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["deliveredTo"] == ["count"]
    wait_for(lambda: httpx.get(f"{d.url}/state/counters/cli").status_code == 200,
             timeout=30, message="the CLI message to be handled")
    bad = cli("enqueue", "order.line", '{"orderId": 1}', "--app", a)
    assert bad.exit_code == 1
    assert "order.line" in bad.output and "index" in bad.output
    nobody = cli("enqueue", "no.such.topic", "{}", "--app", a)
    assert nobody.exit_code == 1
    assert "no step subscribes to 'no.such.topic'" in nobody.output
    assert "counter.incr" in nobody.output  # the known topics are listed


def test_raypipe_dev_serves_the_seed_and_stops_everything_on_ctrl_c(ray_session: int) -> None:
    """README command 1, as a user runs it: its own local Ray, then Ctrl-C."""
    port = free_port()
    # Not this session's Ray, nor its HAProxy listener ports, nor what this session set up
    # for its own Ray: `raypipe dev` picks its own.
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_worker_maximum_startup_concurrency")
           and not k.startswith("RAY_SERVE_HAPROXY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "raypipe.cli", "dev", str(EXAMPLES / "parallel-workflow"),
         "--port", str(port), "--num-cpus", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                return httpx.get(f"{url}/_raypipe/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=180, interval=1, message="raypipe dev to serve")
        # The README's own request: its waits hold a task worker each, so the node runs
        # as many workers as it ever does in a normal run.
        r = httpx.post(f"{url}/api/workflow/start", timeout=30, json={
            "totalSteps": 10, "waitTime": True, "waitTimeMin": 500, "waitTimeMax": 2000})
        wid = r.json()["workflowId"]
        wait_for(lambda: httpx.get(f"{url}/api/workflow/{wid}").json().get("status")
                 == "completed", timeout=120, message="the workflow to complete")
        # The banner's workbench link serves the page, and its API has the run's trace.
        page = httpx.get(f"{url}/_raypipe/")
        assert page.status_code == 200 and '<div id="root">' in page.text
        assert httpx.get(f"{url}/_raypipe/app.js").status_code == 200
        wait_for(lambda: any(t["step"] == "start-parallel-workflow" and t["outcome"] == "ok"
                             for t in httpx.get(f"{url}/_raypipe/api/traces").json()),
                 timeout=30, message="the run's trace in the workbench")
        started = descendants(proc.pid)
        assert started, "raypipe dev started no Ray processes?"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert f"HTTP       {url}" in out
    assert f"Workbench  {url}/_raypipe/" in out
    assert "Dashboard  http://" in out
    # A normal run says nothing alarming: no raylet warning about its worker count, no
    # Serve notice that options "will not be applied", no token notice, no warning of the
    # seed's own, no traceback at Ctrl-C. (Named, not every "WARNING": on a starved machine
    # Serve rightly warns that a replica is slow to start.)
    for alarming in ("worker processes have been started", "will not be applied",
                     "Token authentication is enabled", "no step subscribes", "Traceback",
                     "graceful_shutdown"):
        assert alarming not in out, out[-6000:]
    wait_for(lambda: not [p for p in started if alive(p)], timeout=30,
             message=f"Ray processes to exit: {[p for p in started if alive(p)]}")


def test_a_created_app_runs(deploy_app: Deploy, tmp_path: Path) -> None:
    import asyncio

    from raypipe.runtime.bridge import runtime_for

    target = tmp_path / "fresh"
    assert runner.invoke(app, ["create", str(target)]).exit_code == 0
    d = deploy_app(target, route_prefix="/fresh")
    r = httpx.post(f"{d.url}/hello", json={"name": "ray"})
    assert r.json() == {"message": "hello, ray"}
    rt = runtime_for(d.spec)
    wait_for(lambda: asyncio.run(rt.state.get("hellos", "ray")) == {"n": 1}, timeout=60,
             message="the queue step")


def test_status_keeps_its_counts_across_a_dispatcher_restart(running: Any) -> None:
    import ray
    from ray.experimental import internal_kv

    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for
    from raypipe.runtime.spec import AppSpec

    app_dir, d = running
    spec = AppSpec.from_dir(app_dir)
    rt = runtime_for(d.spec)

    def done() -> int:
        return int(ray.get(rt.dispatcher.stats.remote())["steps"].get("count", {})
                   .get("done", 0))

    before = done()
    for i in range(5):
        assert cli("enqueue", "counter.incr", f'{{"key": "tally{i}"}}', "--app",
                   str(app_dir)).exit_code == 0
    wait_for(lambda: done() == before + 5, timeout=60, message="five deliveries done")
    key = constants.TALLY_KEY.format(namespace=spec.namespace).encode()

    def kept() -> int:
        raw = internal_kv._internal_kv_get(key)
        return int(json.loads(raw).get("count", {}).get("done", 0)) if raw else 0

    # The count step's own count: any step's `"done": 6` in the text passed for it before,
    # and a kill that came before the count step's save then lost its last deliveries.
    wait_for(lambda: kept() == before + 5, timeout=30,
             message=lambda: f"the tally kept: {kept()}")
    dispatcher = ray.get_actor(constants.DISPATCHER_ACTOR, namespace=spec.namespace)
    ray.kill(dispatcher, no_restart=False)
    wait_for(lambda: _answers(dispatcher), timeout=120, message="the dispatcher restarted")
    assert done() == before + 5
    out = cli("status", str(app_dir))
    assert out.exit_code == 0, out.output
    row = next(line for line in out.stdout.splitlines() if line.startswith("count "))
    assert row.split()[2] == str(before + 5), row  # accepted, done: the second column


def _answers(handle: Any) -> bool:
    import ray

    try:
        return bool(ray.get(handle.ready.remote(), timeout=10))
    except Exception:
        return False
