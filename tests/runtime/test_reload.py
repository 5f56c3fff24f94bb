"""`raypipe dev` reloads on save, as a developer uses it (one `raypipe dev` of a copy of the
seed, in a Ray of its own): an edited step is live; a broken edit is reported with its file
and the last good version keeps serving; a new step file adds its route, a deleted one takes
it away; deliveries in flight through an edit finish, none lost; `--no-reload` keeps the
version it started with. How fast is measured by bench/reload.py, not here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT, free_port, wait_for

START = Path("steps") / "start_workflow_step.py"
ADDED = Path("steps") / "added_step.py"


class Dev:
    """A `raypipe dev` process and everything it printed so far."""

    def __init__(self, app_dir: Path, *extra: str) -> None:
        self.app_dir = app_dir
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RAY_", "AUTOSCALER_", "DASHBOARD_", "RAYPIPE_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "raypipe.cli", "dev", str(app_dir), "--port",
             self.url.rsplit(":", 1)[1], "--num-cpus", "1", *extra], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.output)

    def up(self) -> None:
        def health() -> bool:
            assert self.proc.poll() is None, "".join(self.output)
            try:
                return httpx.get(f"{self.url}/_raypipe/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(health, timeout=240, interval=0.5, message="raypipe dev to serve")
        # As a developer would: edits after the banner says it is running.
        wait_for(lambda: self.printed("to stop."), timeout=60, message="the banner")

    def start_message(self) -> str:
        r = httpx.post(f"{self.url}/api/workflow/start", json={"totalSteps": 1}, timeout=30)
        return str(r.json()["message"])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    app_dir = tmp_path / "parallel-workflow"
    shutil.copytree(EXAMPLES / "parallel-workflow", app_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return app_dir


@pytest.fixture
def dev(seed_copy: Path, request: pytest.FixtureRequest) -> Iterator[Dev]:
    d = Dev(seed_copy, *getattr(request, "param", ()))
    try:
        d.up()
        yield d
    finally:
        d.stop()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_edits_go_live_broken_ones_keep_the_last_good_version(dev: Dev) -> None:
    start = dev.app_dir / START
    assert dev.start_message() == "Workflow started successfully"

    # A workflow whose steps take 1-2 s each is in flight through the edits below.
    wid = httpx.post(f"{dev.url}/api/workflow/start", timeout=30, json={
        "totalSteps": 4, "waitTime": True, "waitTimeMin": 1000, "waitTimeMax": 2000,
    }).json()["workflowId"]

    _edit(start, "Workflow started successfully", "Workflow started (edited)")
    wait_for(lambda: dev.start_message() == "Workflow started (edited)", timeout=60,
             interval=0.1, message="the edit to be live")
    wait_for(lambda: dev.printed("reloaded start_workflow_step.py"), timeout=30,
             message=lambda: "the reload's line in the terminal: " + "".join(
                 line for line in dev.output if "reload" in line))

    # A broken edit: reported with its file, and the edited version keeps serving.
    _edit(start, "async def handler(", "async def handler((")
    wait_for(lambda: dev.printed("not reloaded"), timeout=60, message="the failed reload")
    failure = next(line for line in dev.output if "not reloaded" in line)
    assert "start_workflow_step.py" in failure
    assert dev.start_message() == "Workflow started (edited)"
    _edit(start, "async def handler((", "async def handler(")

    # A new step file adds its route; deleting it takes the route away.
    (dev.app_dir / ADDED).write_text(
        "from raypipe import StepConfig, http\n"
        "config = StepConfig(name='added', triggers=[http('GET', '/added')])\n"
        "async def handler(req, ctx):\n    return {'status': 200, 'body': {'added': True}}\n")
    wait_for(lambda: httpx.get(f"{dev.url}/added", timeout=30).status_code == 200,
             timeout=60, interval=0.1, message="the new step's route")
    (dev.app_dir / ADDED).unlink()
    wait_for(lambda: httpx.get(f"{dev.url}/added", timeout=30).status_code == 404,
             timeout=60, interval=0.1, message="the deleted step's route gone")

    # The workflow that was in flight through all of it finished, every step once.
    def done() -> Any:
        w = httpx.get(f"{dev.url}/api/workflow/{wid}", timeout=30).json()
        return w if w.get("status") == "completed" else None

    w = wait_for(done, timeout=120, message="the workflow started before the edits")
    assert w["completedSteps"] == w["totalSteps"] == 4


@pytest.mark.parametrize("dev", [("--no-reload",)], indirect=True)
def test_no_reload_keeps_the_version_it_started_with(dev: Dev) -> None:
    _edit(dev.app_dir / START, "Workflow started successfully", "Workflow started (edited)")
    (dev.app_dir / ADDED).write_text("syntax error here\n")
    # A reload takes well under a second here: ten times that, and nothing changed.
    deadline = 5.0
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        assert dev.start_message() == "Workflow started successfully"
    assert not dev.printed("reloaded") and dev.printed("Press Ctrl-C to stop")
