"""The workbench in a real headless Chromium (Debian's, driven by Playwright), against the
parallel-workflow example and the contract app on real Ray and Serve. Screenshots go to
``test-artifacts/workbench/``."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import EXAMPLES, ROOT, Deploy, wait_for

CONTRACT = ROOT / "tests" / "apps" / "contract"
ARTIFACTS = ROOT / "test-artifacts" / "workbench"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_flow_endpoint_trace_and_logs_of_the_parallel_workflow(deploy_app: Deploy,
                                                               page: Any) -> None:
    d = deploy_app(EXAMPLES / "parallel-workflow")
    graph = httpx.get(f"{d.url}/_raypipe/api/flows?flow=workflow-orchestration").json()

    # --- the flow diagram: one node per step, the topic edges, virtual ones dashed ----------
    page.goto(f"{d.url}/_raypipe/")
    page.wait_for_function("() => window.raypipeFlow && window.raypipeFlow.nodes().length > 0")
    drawn = page.evaluate("""() => ({
        steps: window.raypipeFlow.nodes('.step').map(n => n.id()).sort(),
        edges: window.raypipeFlow.edges().map(e => [e.source().id(), e.target().id(),
                                                    e.data('label'), e.hasClass('virtual')])})""")
    assert drawn["steps"] == sorted(s["name"] for s in graph["steps"])
    assert len(drawn["steps"]) == 9
    edges = {tuple(e) for e in drawn["edges"]}
    assert ("start-parallel-workflow", "process-workflow-step", "workflow.step.process",
            False) in edges
    assert ("workflow-completion", "workflow-completed-consumers", "workflow.completed",
            True) in edges
    assert ("state", "workflow-completion", "state change", True) in edges
    assert len(edges) == len(graph["edges"])
    # The header names the deployed version, as `raypipe status` and the health route do.
    assert page.get_by_test_id("app-version").inner_text() == d.spec.version
    rows = page.locator("[data-testid=flow-steps] tbody tr")
    assert rows.count() == 9
    assert "POST /api/workflow/start" in page.locator(
        "tr[data-step=start-parallel-workflow]").inner_text()
    shot(page, "flows")

    # --- the endpoint tester starts a workflow ---------------------------------------------
    page.click("text=Endpoints")
    page.select_option("[data-testid=endpoint-picker]", "POST /api/workflow/start")
    body = page.locator("textarea[aria-label='request body']")
    assert "totalSteps" in json.loads(body.input_value())  # prefilled from the body schema
    body.fill(json.dumps({"totalSteps": 5}))
    page.click("text=Send POST")
    status = page.locator("[data-testid=response-status]")
    status.wait_for()
    assert status.inner_text() in ("200", "201", "202")
    trace = page.locator("[data-testid=response-trace]").inner_text()
    workflow_id = json.loads(page.locator("[data-testid=response] pre").inner_text())[
        "workflowId"]
    shot(page, "endpoint-tester")

    # --- its trace: every step, as a waterfall ---------------------------------------------
    page.click("[data-testid=response-trace]")
    waterfall = page.locator("[data-testid=trace-waterfall] tbody tr")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=trace-waterfall] tbody tr')]
            .filter(r => r.dataset.step === 'workflow-completion'
                         && r.dataset.outcome === 'ok').length === 1""", timeout=60_000)
    steps = [waterfall.nth(i).get_attribute("data-step") for i in range(waterfall.count())]
    assert steps[0] == "start-parallel-workflow"
    assert steps.count("process-workflow-step") == 5
    assert "workflow-completion" in steps
    shot(page, "trace")

    # --- log lines of that trace only ------------------------------------------------------
    page.click("text=its logs")
    logs = page.locator("[data-testid=log-lines] tbody tr")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=log-lines] tbody tr')]
            .some(r => r.innerText.includes('Workflow completed!'))""", timeout=60_000)
    traces = {logs.nth(i).get_attribute("data-trace") for i in range(logs.count())}
    assert traces == {trace}
    assert logs.count() >= 5 * 2 + 1  # two lines per step at least, and the completion
    shot(page, "logs")

    # --- state: the workflow's item, edited and deleted ------------------------------------
    page.click("header >> text=State")
    page.click("[data-testid=groups] >> text=workflows")
    page.click(f"[data-testid=items] >> text={workflow_id}")
    editor = page.locator("textarea[aria-label='item JSON']")
    item = json.loads(editor.input_value())
    assert item["status"] == "completed" and item["completedSteps"] == 5
    shot(page, "state")
    editor.fill(json.dumps({**item, "note": "edited"}))
    page.click("text=Save")
    wait_for(lambda: httpx.get(f"{d.url}/api/workflow/{workflow_id}").json().get("note")
             == "edited", timeout=10, message="the edit saved")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Delete")
    wait_for(lambda: httpx.get(f"{d.url}/api/workflow/{workflow_id}").status_code == 404,
             timeout=10, message="the item deleted")


def test_dead_letter_inspected_and_replayed(deploy_app: Deploy, page: Any) -> None:
    from raypipe.enqueue import publish
    from raypipe.loader import load_app_cached
    from raypipe.runtime.bridge import runtime_for

    d = deploy_app(CONTRACT)
    rt = runtime_for(d.spec)
    app = load_app_cached(d.spec.root, d.spec.settings)
    # Playwright's sync API keeps an event loop on this thread: publish from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, publish(app, rt, "doomed", {"id": "from-the-workbench"},
                                         trace_id="wb")).result()
    [letter] = wait_for(lambda: httpx.get(f"{d.url}/_raypipe/dlq").json(), timeout=60,
                        message="the dead letter")

    page.goto(f"{d.url}/_raypipe/#/dlq")
    row = page.locator(f"[data-testid=dead-letters] tr[data-id='{letter['id']}']")
    row.wait_for()
    row.locator("a").first.click()
    detail = page.locator("[data-testid=dead-letter]")
    detail.wait_for()
    assert "attempt 2 fails" in detail.inner_text()
    assert "Traceback" in detail.inner_text()
    shot(page, "dead-letter")
    detail.locator("text=Replay").click()
    note = page.locator("[role=status]")
    note.wait_for()
    assert note.inner_text().split("Replayed: ")[1].strip() == letter["id"]

    # The replay is the same delivery, with fresh attempts; they fail too, and its dead letter
    # comes back with all of them.
    def again() -> Any:
        entries = httpx.get(f"{d.url}/_raypipe/dlq").json()
        return [e for e in entries if e["id"] == letter["id"] and
                len(e["errors"]) == 2 * len(letter["errors"])]

    wait_for(again, timeout=60, message="the replay's attempts in its dead letter")
