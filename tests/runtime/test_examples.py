"""The two seed apps, driven over HTTP exactly as the seeds' curl commands."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import EXAMPLES, Deploy, wait_for


def test_parallel_workflow_seed_curl_completes(deploy_app: Deploy) -> None:
    d = deploy_app(EXAMPLES / "parallel-workflow")
    # curl -X POST http://localhost:3111/api/workflow/start -H "Content-Type: application/json"
    #   -d '{"totalSteps": 10, "waitTime": true, "waitTimeMin": 500, "waitTimeMax": 2000}'
    r = httpx.post(f"{d.url}/api/workflow/start",
                   headers={"Content-Type": "application/json"},
                   content=b'{"totalSteps": 10, "waitTime": true, "waitTimeMin": 500, '
                           b'"waitTimeMax": 2000}', timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Workflow started successfully"
    assert body["totalSteps"] == 10
    wid = body["workflowId"]

    def completed() -> Any:
        w = httpx.get(f"{d.url}/api/workflow/{wid}").json()
        return w if w.get("status") == "completed" else None

    w = wait_for(completed, timeout=120, message="the workflow to complete")
    assert w["completedSteps"] == w["totalSteps"] == 10
    assert sorted(w["steps"], key=int) == [str(i) for i in range(10)]
    assert all(500 <= s["duration"] <= 2000 for s in w["steps"].values())
    results = w["results"]
    assert results["completionRate"] == 100
    total = sum(s["result"]["value"] for s in w["steps"].values())
    assert abs(results["totalValue"] - total) < 1e-6

    # Defaults apply to an empty body; a wrong type is a 422 naming the field.
    assert httpx.post(f"{d.url}/api/workflow/start").json()["totalSteps"] == 5
    bad = httpx.post(f"{d.url}/api/workflow/start", json={"totalSteps": "ten"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "totalSteps"]
    assert httpx.get(f"{d.url}/api/workflow/nope").status_code == 404


def test_user_registration_seed_curls(deploy_app: Deploy) -> None:
    d = deploy_app(EXAMPLES / "user-registration")
    # curl -X POST http://localhost:3000/users/register -H "Content-Type: application/json"
    #   -d '{"name": "Alice Johnson", "email": "alice@example.com", "password": "securepass123"}'
    r = httpx.post(f"{d.url}/users/register", headers={"Content-Type": "application/json"},
                   content=b'{"name": "Alice Johnson", "email": "alice@example.com", '
                           b'"password": "securepass123"}', timeout=60)
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["status"] == "pending"
    assert user["name"] == "Alice Johnson" and user["email"] == "alice@example.com"
    assert user["userId"].startswith("user-")
    assert set(user) == {"userId", "name", "email", "status", "createdAt"}

    # curl http://localhost:3000/users/<userId>/status  (after 2-3 seconds)
    def active() -> Any:
        s = httpx.get(f"{d.url}/users/{user['userId']}/status").json()
        return s if s.get("status") == "active" and s.get("emailSent") else None

    status = wait_for(active, timeout=60, message="the user to become active")
    assert status == {**user, "status": "active", "emailSent": True, "accountSetup": True}
    assert httpx.get(f"{d.url}/users/nobody/status").status_code == 404

    bad = httpx.post(f"{d.url}/users/register",
                     json={"name": "A", "email": "not-an-email", "password": "short"})
    assert bad.status_code == 422
    fields = {e["loc"][-1]: e["msg"] for e in bad.json()["detail"]}
    assert set(fields) == {"name", "email", "password"}
    assert "at least 2 characters" in fields["name"]
    assert "Invalid email" in fields["email"]
    assert "at least 8 characters" in fields["password"]


def test_image_pipeline_runs_on_its_actor_pool(deploy_app: Deploy) -> None:
    d = deploy_app(EXAMPLES / "image-pipeline")
    r = httpx.post(f"{d.url}/jobs", json={"images": 200, "size": 64}, timeout=60)
    assert r.status_code == 202, r.text
    job = r.json()["jobId"]

    def completed() -> Any:
        got = httpx.get(f"{d.url}/jobs/{job}", timeout=30).json()
        return got if got["status"] == "completed" else None

    assert wait_for(completed, timeout=180, message="the image job to complete") == {
        "total": 200, "done": 200, "status": "completed"}
    stream = httpx.get(f"{d.url}/_raypipe/api/streams/jobs/all", timeout=30).json()
    assert {"id": job, "total": 200, "done": 200, "status": "completed"} in stream
