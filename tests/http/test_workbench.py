"""The workbench's page and API without Ray (the browser tests run it on Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from raypipe.http.routes import build_http_app
from raypipe.loader import load_app
from raypipe.settings import load_settings
from tests.http.test_routes import NoRuntime

SEED = Path(__file__).resolve().parent.parent.parent / "examples" / "parallel-workflow"


@pytest.fixture(scope="module")
def client() -> TestClient:
    settings = load_settings(SEED, {"admin_token": "t"})
    return TestClient(build_http_app(load_app(SEED, settings), lambda: NoRuntime()),
                      headers={"authorization": "Bearer t"})


def test_the_page_and_its_assets_are_served_offline(client: TestClient) -> None:
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


def test_the_app_description_lists_http_steps_with_their_body_schema(client: TestClient) -> None:
    app = client.get("/_raypipe/api/app").json()
    assert app["flows"] == ["workflow-orchestration"] and app["streams"] == ["workflows"]
    start = next(e for e in app["endpoints"] if e["path"] == "/api/workflow/start")
    assert start["method"] == "POST" and start["step"] == "start-parallel-workflow"
    assert "totalSteps" in start["body_schema"]["properties"]


def test_flows_by_name_and_unknown_ones(client: TestClient) -> None:
    graph = client.get("/_raypipe/api/flows", params={"flow": "workflow-orchestration"}).json()
    assert len(graph["steps"]) == 9
    assert client.get("/_raypipe/api/flows", params={"flow": "nope"}).status_code == 404


def test_logs_and_traces_need_a_runtime_with_telemetry(client: TestClient) -> None:
    assert client.get("/_raypipe/api/logs").status_code == 503
    assert client.get("/_raypipe/api/traces").status_code == 503
