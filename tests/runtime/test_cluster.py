"""The README's "Run on a cluster", as written: a fresh `ray start --head` (on ports away from
Redis' 6379 and Ray's worker range), `ray job submit` of the workflow job, `serve deploy` of a
shipped Serve config. Everything this test starts it ends, by pid; it never runs `ray stop`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, alive, descendants, free_port, wait_for

RAY = str(Path(sys.executable).with_name("ray"))
SERVE = str(Path(sys.executable).with_name("serve"))


def _naming_gcs_port(port: int) -> set[int]:
    """Processes whose arguments name this cluster's GCS (``--gcs-address=IP:PORT``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="ignore").split("\0")
            except OSError:
                continue
            if any(a.startswith("--gcs-address=") and a.endswith(f":{port}") for a in args):
                found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    gcs, dashboard, client, agent = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={gcs}", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={client}",
         # Its own agent port: the session's Ray already holds the default (52365), and a
         # head whose job agent cannot bind answers every submit with "No available agent".
         f"--dashboard-agent-listen-port={agent}", "--num-cpus=2", "--block"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{dashboard}"
    # Ray 2.59+ turns token authentication on for local clusters: clients must send the token.
    client_env = {**env, "RAY_AUTH_MODE": "token", "RAY_API_SERVER_ADDRESS": api,
                  "RAY_ADDRESS": f"127.0.0.1:{gcs}"}
    started: set[int] = set()
    try:
        wait_for(lambda: head.poll() is None and _dashboard_up(api), timeout=120, interval=1,
                 message="ray start --head")
        started = descendants(head.pid)
        yield {"api": api, "serve_port": str(free_port()),
               **{f"env:{k}": v for k, v in client_env.items()}}
    finally:
        # Everything the head started (workers, actors, agents, Serve) and anything that
        # names this cluster's GCS: ours alone, ended by pid.
        ours = {head.pid, *started, *descendants(head.pid),
                *_naming_gcs_port(gcs)}
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        head.communicate(timeout=30)
        wait_for(lambda: not [p for p in ours if alive(p)], timeout=30,
                 message="the test cluster's processes to exit")
        # `ray start` registered the cluster for `address="auto"`; it is gone, so is that.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{gcs}"):
            current.unlink()


def _dashboard_up(api: str) -> bool:
    try:
        return httpx.get(f"{api}/api/version", timeout=2).status_code in (200, 401)
    except httpx.HTTPError:
        return False


def _env(cluster: dict[str, str]) -> dict[str, str]:
    return {k[4:]: v for k, v in cluster.items() if k.startswith("env:")}


def test_ray_job_submit_runs_a_workflow_to_completion(cluster: dict[str, str]) -> None:
    port = cluster["serve_port"]
    for _ in range(20):
        out = subprocess.run(
            [RAY, "job", "submit", "--working-dir", ".", "--", "python",
             "jobs/run_workflow.py", "--total-steps", "20", "--port", port],
            cwd=ROOT, env=_env(cluster), capture_output=True, text=True, timeout=600)
        # A fresh head takes a few seconds more to start its job agent than its dashboard.
        if "No available agent" not in out.stdout + out.stderr:
            break
        time.sleep(3)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "20/20" in out.stdout
    assert "completed: {'totalValue'" in out.stdout
    assert "succeeded" in out.stdout + out.stderr


def test_serve_deploy_of_a_shipped_config_serves_the_example(cluster: dict[str, str],
                                                             tmp_path: Path) -> None:
    # One Serve per cluster, one HTTP port: the one the job above started it on.
    port = cluster["serve_port"]
    config = (ROOT / "serve" / "user-registration.yaml").read_text()
    config = config.replace("port: 3111", f"port: {port}")
    (tmp_path / "app.yaml").write_text(config)
    out = subprocess.run([SERVE, "deploy", "--address", cluster["api"], str(tmp_path / "app.yaml")],
                         cwd=ROOT, env=_env(cluster), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/_raypipe/health").json().get("app") == "user-registration"
        except (httpx.HTTPError, ValueError):
            return False

    wait_for(up, timeout=180, interval=1, message="the deployed app")
    r = httpx.post(f"{url}/users/register", json={
        "name": "Alice Johnson", "email": "alice@example.com", "password": "securepass123"})
    assert r.status_code == 201, r.text
    user_id = r.json()["userId"]
    wait_for(lambda: httpx.get(f"{url}/users/{user_id}/status").json().get("status")
             == "active", timeout=60, message="the user to become active")
