"""The HTTP layer without Ray: the FastAPI app built from steps, on an in-process runtime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from raypipe.http.routes import build_http_app
from raypipe.loader import load_app

CONTRACT = Path(__file__).resolve().parent.parent / "apps" / "contract"


class Unreachable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the runtime was used ({name}); these requests must not reach it")


class NoRuntime:
    """These requests never get as far as state or the bus."""

    state = bus = dead_letters = streams = Unreachable()


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = load_app(CONTRACT)
    return TestClient(build_http_app(app, lambda: NoRuntime()), raise_server_exceptions=False)


def test_unserialisable_body_is_a_clear_error(client: TestClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="raypipe.http"):
        r = client.get("/unserialisable")
    assert r.status_code == 500
    assert r.json() == {"error": "Internal Server Error", "traceId": r.headers["x-trace-id"]}
    assert "not JSON-serialisable" in caplog.text and "Opaque" in caplog.text


def test_validation_happens_before_the_handler(client: TestClient) -> None:
    r = client.post("/orders/acme", json={"customer": "acme", "lines": [{"sku": 1}]})
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {
        ("body", "lines", 0, "sku"), ("body", "lines", 0, "qty")}


def test_incoming_trace_id_is_kept(client: TestClient) -> None:
    r = client.get("/bad-response", headers={"x-trace-id": "abc123"})
    assert r.headers["x-trace-id"] == "abc123"
    assert r.status_code == 500
