"""An app written against the contract (tests/apps/contract) on real Ray and Serve."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for

APP = Path(__file__).resolve().parent.parent / "apps" / "contract"


@pytest.fixture(scope="module")
def contract(ray_session: int) -> Any:
    # One deployment for the module: deploying costs seconds.
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    spec = AppSpec.from_dir(APP, name="contract-tests", port=ray_session, dev=True)
    deployment = deploy(spec)
    yield deployment
    teardown(spec)


def get_state(url: str, group: str, key: str) -> Any:
    r = httpx.get(f"{url}/state/{group}/{key}")
    return r.json() if r.status_code == 200 else None


def test_fan_out_fan_in_1000_completion_fires_once(contract: Any) -> None:
    lines = [{"sku": f"sku-{i}", "qty": 1} for i in range(1000)]
    r = httpx.post(f"{contract.url}/orders/acme", json={"customer": "acme", "lines": lines},
                   timeout=120)
    assert r.status_code == 202, r.text
    assert r.headers["x-middleware"] == "seen"
    oid, trace = r.json()["orderId"], r.json()["traceId"]
    assert r.headers["x-trace-id"] == trace

    order = wait_for(lambda: (o := get_state(contract.url, "orders", oid)) and o["done"] == 1000
                     and o, timeout=240, message="1000 lines processed")
    assert len(order["lines_by_index"]) == 1000
    # Every downstream delivery carried the request's trace id.
    assert set(order["traces"]) == {trace}

    done = wait_for(lambda: get_state(contract.url, "completions", oid), timeout=60,
                    message="completion handler")
    time.sleep(2)  # a second firing would have shown up by now
    done = get_state(contract.url, "completions", oid)
    assert done["count"] == 1
    assert done["trace"] == trace
    # ... and the 0.x dict step downstream of the completion ran, synchronously written.
    notified = wait_for(lambda: get_state(contract.url, "notified", oid), timeout=60,
                        message="0.x NotifyCustomer step")
    assert notified == {"attempt": 1, "trace": trace}


def test_500_concurrent_increments_of_one_item(contract: Any) -> None:
    from raypipe.enqueue import publish
    from raypipe.loader import load_app_cached
    from raypipe.runtime.bridge import runtime_for

    spec = contract.spec
    app = load_app_cached(spec.root, spec.settings)

    async def send() -> None:
        await asyncio.gather(*(publish(app, runtime_for(spec), "counter.incr", {"key": "hot"},
                                       trace_id=f"t{i}") for i in range(500)))

    asyncio.run(send())
    wait_for(lambda: (get_state(contract.url, "counters", "hot") or {}).get("n") == 500,
             timeout=180, message="500 increments")
    time.sleep(1)
    assert get_state(contract.url, "counters", "hot") == {"n": 500}


def test_422_names_the_fields(contract: Any) -> None:
    r = httpx.post(f"{contract.url}/orders/acme",
                   json={"customer": "acme", "lines": [{"sku": "a", "qty": 0}]})
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [["body", "lines", 0, "qty"]]
    r = httpx.post(f"{contract.url}/orders/acme", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_enqueue_misuse_raises_in_the_handler(contract: Any) -> None:
    r = httpx.post(f"{contract.url}/misuse/undeclared")
    assert r.json()["error"] == "EnqueueError"
    assert "not.declared" in r.json()["message"]
    r = httpx.post(f"{contract.url}/misuse/invalid")
    body = r.json()
    assert body["error"] == "EnqueueValidationError"
    assert "order.line" in body["message"] and "index" in body["message"]


def test_cron_fires_once_per_tick(contract: Any) -> None:
    first = wait_for(lambda: get_state(contract.url, "ticks", "all"), timeout=30,
                     message="first tick")
    time.sleep(3.2)
    later = get_state(contract.url, "ticks", "all")
    fired = later["n"] - first["n"]
    assert 2 <= fired <= 4, fired
    # Each firing starts its own trace.
    assert len(set(later["traces"])) == later["n"]


def test_openapi_documents_routes_and_schemas(contract: Any) -> None:
    doc = httpx.get(f"{contract.url}/openapi.json").json()
    op = doc["paths"]["/orders/{customer}"]["post"]
    assert op["summary"] == "create-order"
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"}
    assert "Line" in doc["components"]["schemas"]
    assert [p["name"] for p in op["parameters"]] == ["customer"]
    assert httpx.get(f"{contract.url}/docs").status_code == 200


def _send(contract: Any, topic: str, messages: list[dict[str, Any]]) -> None:
    from raypipe.enqueue import publish
    from raypipe.loader import load_app_cached
    from raypipe.runtime.bridge import runtime_for

    spec = contract.spec
    app = load_app_cached(spec.root, spec.settings)

    async def send() -> None:
        for m in messages:
            await publish(app, runtime_for(spec), topic, m, trace_id="t")

    asyncio.run(send())


def test_tasks_are_named_after_their_step_and_modules_imported_once(contract: Any) -> None:
    _send(contract, "facts", [{"i": i} for i in range(30)])
    facts = [wait_for(lambda i=i: get_state(contract.url, "facts", str(i)), timeout=60,
                      message=f"fact {i}") for i in range(30)]
    assert {f["task"] for f in facts} == {"worker-facts"}
    # However many deliveries a worker process ran, it imported the step file once.
    assert {f["imports"] for f in facts} == {1}
    assert len({f["pid"] for f in facts}) < 30


def test_failing_handler_is_retried_then_dead_lettered(contract: Any) -> None:
    import ray

    from raypipe import constants

    _send(contract, "flaky", [{"id": "flaky-1"}])
    _send(contract, "doomed", [{"id": "doomed-1"}])
    wait_for(lambda: get_state(contract.url, "attempts", "flaky-1:3"), timeout=60,
             message="the third attempt")
    assert get_state(contract.url, "attempts", "flaky-1:4") is None

    dispatcher = ray.get_actor(constants.DISPATCHER_ACTOR, namespace=contract.spec.namespace)

    def dead() -> Any:
        return [d for d in ray.get(dispatcher.list_dead_letters.remote())
                if d["payload"] == {"id": "doomed-1"}]

    [letter] = wait_for(dead, timeout=60, message="the dead letter")
    assert letter["step"] == "failing" and letter["topic"] == "doomed"
    assert [e["attempt"] for e in letter["errors"]] == [1, 2]
    assert "attempt 2 fails" in letter["errors"][1]["error"]
    assert "RuntimeError" in letter["errors"][1]["traceback"]
    assert get_state(contract.url, "attempts", "doomed-1:2") == "t"
    assert get_state(contract.url, "attempts", "doomed-1:3") is None


def test_response_schema_is_enforced(contract: Any) -> None:
    r = httpx.get(f"{contract.url}/bad-response")
    assert r.status_code == 500
    assert r.json()["traceId"] == r.headers["x-trace-id"]
