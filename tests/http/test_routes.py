"""The HTTP layer without Ray: the FastAPI app built from steps, on raypipe.testing's
in-process runtime."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raypipe.testing import TestApp

CONTRACT = Path(__file__).resolve().parent.parent / "apps" / "contract"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with TestApp(CONTRACT) as app:
        yield app.client


def test_unserialisable_body_is_a_clear_error(client: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="raypipe.http"):
        r = client.get("/unserialisable")
    assert r.status_code == 500
    assert r.json() == {"error": "Internal Server Error", "traceId": r.headers["x-trace-id"]}
    assert "not JSON-serialisable" in caplog.text and "Opaque" in caplog.text


def test_validation_happens_before_the_handler(client: Any) -> None:
    r = client.post("/orders/acme", json={"customer": "acme", "lines": [{"sku": 1}]})
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {
        ("body", "lines", 0, "sku"), ("body", "lines", 0, "qty")}


def test_incoming_trace_id_is_kept(client: Any) -> None:
    r = client.get("/bad-response", headers={"x-trace-id": "abc123"})
    assert r.headers["x-trace-id"] == "abc123"
    assert r.status_code == 500
