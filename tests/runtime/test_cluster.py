"""The README's "Run on a cluster", as written: a fresh `ray start --head` (on ports away from
Redis' 6379 and Ray's worker range), `ray job submit` of the workflow job, `serve deploy` of a
shipped Serve config. Everything this test starts it ends, by pid; it never runs `ray stop`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, wait_for
from tests.runtime.raycluster import RAY, SERVE, LocalCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster()
    try:
        c.start_head()
        yield c
    finally:
        c.stop()
        c.close()


def test_ray_job_submit_runs_a_workflow_to_completion(cluster: LocalCluster) -> None:
    port = str(cluster.serve_port)
    for _ in range(20):
        out = cluster.run(RAY, "job", "submit", "--working-dir", ".", "--", "python",
                          "jobs/run_workflow.py", "--total-steps", "20", "--port", port,
                          timeout=600)
        # A fresh head takes a few seconds more to start its job agent than its dashboard.
        if "No available agent" not in out.stdout + out.stderr:
            break
        time.sleep(3)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "20/20" in out.stdout
    assert "completed: {'totalValue'" in out.stdout
    assert "succeeded" in out.stdout + out.stderr


def test_serve_deploy_of_a_shipped_config_serves_the_example(cluster: LocalCluster,
                                                             tmp_path: Path) -> None:
    # One Serve per cluster, one HTTP port: the one the job above started it on.
    port = cluster.serve_port
    config = (ROOT / "serve" / "user-registration.yaml").read_text()
    config = config.replace("port: 3111", f"port: {port}")
    (tmp_path / "app.yaml").write_text(config)
    out = cluster.run(SERVE, "deploy", "--address", cluster.api, str(tmp_path / "app.yaml"),
                      timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # Beside the job's app at /, on its own prefix.
    url = f"http://127.0.0.1:{port}/user-registration"

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
