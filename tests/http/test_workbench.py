"""The workbench's page and API without Ray, on raypipe.testing (the browser tests run it on
Ray)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raypipe.testing import TestApp

SEED = Path(__file__).resolve().parent.parent.parent / "examples" / "parallel-workflow"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with TestApp(SEED, settings={"admin_token": "t"}) as app:
        app.client.headers["authorization"] = "Bearer t"
        yield app.client


def test_the_page_and_its_assets_are_served_offline(client: Any) -> None:
    r = client.get("/_raypipe", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "_raypipe/"
    page = client.get("/_raypipe/")
    assert page.status_code == 200 and '<script type="module" src="app.js">' in page.text
    js = client.get("/_raypipe/app.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    # Nothing fetched from elsewhere: the page works without a network.
    assert "https://" not in page.text and "cdn" not in page.text
    assert client.get("/_raypipe/style.css").status_code == 200
    # The page does not shadow raypipe's own endpoints.
    assert client.get("/_raypipe/health").json()["app"] == "parallel-workflow"


def test_the_app_description_lists_http_steps_with_their_body_schema(client: Any) -> None:
    app = client.get("/_raypipe/api/app").json()
    assert app["flows"] == ["workflow-orchestration"] and app["streams"] == ["workflows"]
    start = next(e for e in app["endpoints"] if e["path"] == "/api/workflow/start")
    assert start["method"] == "POST" and start["step"] == "start-parallel-workflow"
    assert "totalSteps" in start["body_schema"]["properties"]


def test_flows_by_name_and_unknown_ones(client: Any) -> None:
    graph = client.get("/_raypipe/api/flows", params={"flow": "workflow-orchestration"}).json()
    assert len(graph["steps"]) == 9
    assert client.get("/_raypipe/api/flows", params={"flow": "nope"}).status_code == 404


def test_logs_and_traces_of_a_run(client: Any) -> None:
    r = client.post("/api/workflow/start", json={"totalSteps": 2})
    trace_id = r.headers["x-trace-id"]
    wait = client.get("/_raypipe/api/logs", params={"trace": trace_id, "wait": 5}).json()
    assert any(line["step"] == "start-parallel-workflow" for line in wait["lines"])
    traces = client.get("/_raypipe/api/traces").json()
    assert trace_id in [t["trace_id"] for t in traces]
    spans = client.get(f"/_raypipe/api/traces/{trace_id}").json()["spans"]
    assert "start-parallel-workflow" in {s["step"] for s in spans}


def test_the_api_docs_page_and_its_assets_are_served_offline(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    # Swagger UI 5: the first to render OpenAPI 3.1, which FastAPI writes.
    assert js.status_code == 200 and b'"5.' in js.content
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert client.get("/redoc").status_code == 200
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 200


def test_the_status_counts_each_steps_deliveries_for_the_admin_only() -> None:
    with TestApp(SEED, settings={"admin_token": "t"}) as app:
        assert app.client.get("/_raypipe/api/status").status_code == 401
        app.client.headers["authorization"] = "Bearer t"
        app.client.post("/api/workflow/start", json={"totalSteps": 3})
        app.run_until_idle()
        status = app.client.get("/_raypipe/api/status").json()
    assert status["in_flight"] == 0 and status["dead_letters"] == 0
    assert status["steps"]["process-workflow-step"]["done"] == 3
    assert status["pools"] == {}  # pools run in-process here
