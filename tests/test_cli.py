"""The CLI's Ray-free commands, through Typer's CliRunner."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raypipe.cli import app
from tests.conftest import EXAMPLES, ROOT

runner = CliRunner()


def test_help_does_not_import_ray() -> None:
    code = ("import sys; from typer.testing import CliRunner; from raypipe.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'dev' in r.output; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_flows_text_mermaid_json() -> None:
    pw = str(EXAMPLES / "parallel-workflow")
    text = runner.invoke(app, ["flows", pw])
    assert text.exit_code == 0, text.output
    assert "-> workflow.step.process -> process-workflow-step" in text.output

    mermaid = runner.invoke(app, ["flows", pw, "--format", "mermaid"])
    assert mermaid.exit_code == 0
    assert mermaid.output.startswith("flowchart LR")

    js = runner.invoke(app, ["flows", pw, "-f", "json"])
    doc = json.loads(js.stdout)
    assert {"source": "start-parallel-workflow", "target": "process-workflow-step",
            "topic": "workflow.step.process", "virtual": False} in doc["edges"]
    assert len(doc["steps"]) == 9
    assert {"source": "start-stream-workflow", "target": "process-stream-workflow-step",
            "topic": "workflow.stream.step.process", "virtual": False} in doc["edges"]


def test_flows_filter_and_errors() -> None:
    ur = str(EXAMPLES / "user-registration")
    ok = runner.invoke(app, ["flows", ur, "--flow", "user-registration"])
    assert ok.exit_code == 0 and "RegisterUser" in ok.output
    unknown = runner.invoke(app, ["flows", ur, "--flow", "nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output
    fmt = runner.invoke(app, ["flows", ur, "--format", "xml"])
    assert fmt.exit_code == 2 and "mermaid" in fmt.output


def test_a_broken_app_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad_step.py").write_text(
        "from raypipe import StepConfig, cron\n"
        "config = StepConfig(name='bad', triggers=[cron('not a cron')])\n"
        "async def handler(_, ctx): ...\n")
    result = runner.invoke(app, ["flows", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad_step.py: config.triggers[0].expression" in result.output


def test_missing_directory_and_bad_settings(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["flows", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a directory" in missing.output
    (tmp_path / "pyproject.toml").write_text('[tool.raypipe]\nport = "many"\n')
    bad = runner.invoke(app, ["flows", str(tmp_path)])
    assert bad.exit_code == 2 and "port" in bad.output


def test_enqueue_rejects_bad_json_before_connecting() -> None:
    result = runner.invoke(app, ["enqueue", "t", "{oops", "--app",
                                 str(EXAMPLES / "parallel-workflow")])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_create_scaffolds_an_app_that_loads(tmp_path: Path) -> None:
    from raypipe.loader import load_app

    target = tmp_path / "my-app"
    result = runner.invoke(app, ["create", str(target)])
    assert result.exit_code == 0, result.output
    loaded = load_app(target)
    assert loaded.name == "my-app"
    assert sorted(loaded.steps) == ["count-hellos", "hello-api"]
    assert [s.name for s in loaded.subscribers("hello.said")] == ["count-hellos"]
    again = runner.invoke(app, ["create", str(target)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_a_bad_authenticate_setting_fails_at_load_naming_it(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    shutil.copytree(ROOT / "tests" / "apps" / "streams", app_dir)
    (app_dir / "pyproject.toml").write_text(
        '[tool.raypipe]\nname = "bad-auth"\nauthenticate = "nope_module:authenticate"\n')
    result = runner.invoke(app, ["flows", str(app_dir)])
    assert result.exit_code == 1
    assert "authenticate" in result.output and "nope_module" in result.output
    (app_dir / "pyproject.toml").write_text(
        '[tool.raypipe]\nname = "bad-auth"\nauthenticate = "auth:missing"\n')
    result = runner.invoke(app, ["flows", str(app_dir)])
    assert result.exit_code == 1 and "has no function 'missing'" in result.output


def test_watch_until_complete_waits_for_an_item_of_this_run() -> None:
    """An item a run finished before the watch began is not what it waits for."""
    from raypipe.cli import _complete

    earlier = {"old": True}
    assert not _complete(None, set(), earlier)  # nothing moved yet: keep watching
    assert not _complete(None, {"new"}, {**earlier, "new": False})
    assert _complete(None, {"new"}, {**earlier, "new": True})
    assert _complete("old", set(), earlier)  # the one asked for, complete already
    assert not _complete("new", {"new"}, {"new": False})


@pytest.mark.parametrize("command", [
    [], ["dev"], ["start"], ["status"], ["stop"], ["enqueue"], ["watch"], ["flows"], ["create"],
    ["state"], ["state", "get"], ["state", "list"], ["state", "set"], ["dlq"], ["dlq", "replay"],
])
def test_help_has_no_placeholders(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    # Typer 0.29 writes required arguments as {name} and kinds as <str>, <bool>.
    assert not re.search(r"\{[a-z_]+\}|<(bool|str|int|path|float)>", result.output), \
        result.output
