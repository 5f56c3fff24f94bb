"""Discovering and loading apps: what is found, what errors say, and the shipped examples."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from raypipe import AppLoadError, StepLoadError
from raypipe import triggers as t
from raypipe.loader import discover, load_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

OK_STEP = """
from raypipe import StepConfig, queue
config = StepConfig(name={name!r}, triggers=[queue("t")])
async def handler(data, ctx):
    pass
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def load_errors(root: Path) -> list[StepLoadError]:
    with pytest.raises(AppLoadError) as info:
        load_app(root)
    return info.value.errors


def only_error(root: Path) -> StepLoadError:
    errors = load_errors(root)
    assert len(errors) == 1, errors
    return errors[0]


# --- discovery -------------------------------------------------------------------------------


def test_discover_recurses_and_skips_hidden_cache_vendor_and_venv_dirs(tmp_path: Path) -> None:
    write(tmp_path, {
        "a_step.py": "", "helpers.py": "", "notes_step.txt": "",
        "src/deep/er/b_step.py": "", "src/chat_stream.py": "",
        ".hidden/c_step.py": "", "src/.git/d_step.py": "",
        "__pycache__/e_step.py": "", "node_modules/pkg/f_step.py": "",
        ".venv/lib/g_step.py": "", "myenv/pyvenv.cfg": "", "myenv/lib/h_step.py": "",
    })
    steps, streams = discover(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in steps] == [
        "a_step.py", "src/deep/er/b_step.py"]
    assert [p.relative_to(tmp_path).as_posix() for p in streams] == ["src/chat_stream.py"]


def test_same_relative_paths_in_two_apps_load_their_own_modules(tmp_path: Path) -> None:
    one = write(tmp_path / "one", {"steps/x_step.py": OK_STEP.format(name="from-one")})
    two = write(tmp_path / "two", {"steps/x_step.py": OK_STEP.format(name="from-two")})
    assert list(load_app(one).steps) == ["from-one"]
    assert list(load_app(two).steps) == ["from-two"]


# --- errors name the file and the field ------------------------------------------------------


def test_duplicate_step_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, {"a/first_step.py": OK_STEP.format(name="same"),
                     "b/second_step.py": OK_STEP.format(name="same")})
    err = only_error(tmp_path)
    assert (err.file, err.field) == ("b/second_step.py", "config.name")
    assert "'same'" in err.message and "a/first_step.py" in err.message


def test_two_steps_on_the_same_route_with_differently_named_params(tmp_path: Path) -> None:
    route = """
    from raypipe import StepConfig, http
    config = StepConfig(name={name!r}, triggers=[http("GET", {path!r})])
    async def handler(req, ctx):
        return {{"status": 200}}
    """
    write(tmp_path, {
        "a_step.py": route.format(name="a", path="/users/{id}/posts"),
        "b_step.py": route.format(name="b", path="/users/:other/posts"),
        "c_step.py": route.format(name="c", path="/users/:other/likes"),  # a different route
    })
    err = only_error(tmp_path)
    assert (err.file, err.field) == ("b_step.py", "config.triggers[0]")
    assert "GET /users/{other}/posts" in err.message and "'a'" in err.message


@pytest.mark.parametrize(("source", "field", "words"), [
    ('config = {"name": "x", "triggers": [{"type": "webhook"}]}',
     "config.triggers[0].type", "'webhook'"),
    ('from raypipe import StepConfig, cron\n'
     'config = StepConfig(name="x", triggers=[cron("* * *")])',
     "config.triggers[0].expression", "3 fields"),
    ('config = {"type": "cron", "name": "x", "cron": "not a cron at all"}',
     "config.cron", "not a valid cron expression"),
    ('config = {"type": "api", "name": "x", "method": "GET", "path": "/x"}',
     "handler", "no `handler`"),
    ('handler = print', "config", "must define `config`"),
])
def test_bad_step_file_errors(tmp_path: Path, source: str, field: str, words: str) -> None:
    write(tmp_path, {"steps/bad_step.py": source + "\n"})
    err = only_error(tmp_path)
    assert (err.file, err.field) == ("steps/bad_step.py", field)
    assert words in err.message
    assert str(err).startswith(f"steps/bad_step.py: {field}: ")


def test_a_file_whose_import_raises_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"boom_step.py": "import os\n\nraise RuntimeError('no config today')\n"})
    err = only_error(tmp_path)
    assert err.file == "boom_step.py"
    assert "line 3" in err.message
    assert "RuntimeError: no config today" in err.message


def test_all_errors_of_an_app_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, {
        "good_step.py": OK_STEP.format(name="good"),
        "other_step.py": OK_STEP.format(name="good"),
        "nohandler_step.py": 'config = {"type": "event", "name": "n", "subscribes": ["t"]}',
        "trigger_step.py": 'config = {"name": "u", "triggers": [{"type": "ftp"}]}',
        "syntax_step.py": "def broken(:\n",
    })
    errors = load_errors(tmp_path)
    assert sorted((e.file, e.field) for e in errors) == [
        ("nohandler_step.py", "handler"),
        ("other_step.py", "config.name"),
        ("syntax_step.py", None),
        ("trigger_step.py", "config.triggers[0].type"),
    ]
    with pytest.raises(AppLoadError, match=r"the app has 4 error\(s\)"):
        load_app(tmp_path)


def test_a_path_that_is_not_a_directory(tmp_path: Path) -> None:
    err = only_error(tmp_path / "missing")
    assert "is not a directory" in err.message


# --- the shipped examples --------------------------------------------------------------------


def routes(app: Any) -> dict[tuple[str, str], str]:
    return {(tr.method, tr.path): s.name
            for s in app.steps.values() for tr in s.triggers_of(t.HttpTrigger)}


def test_parallel_workflow_example_loads() -> None:
    app = load_app(EXAMPLES / "parallel-workflow")
    assert app.name == "parallel-workflow"
    assert app.settings.port == 3111
    assert sorted(app.steps) == [
        "get-workflow", "process-stream-workflow-step", "process-workflow-step",
        "start-parallel-workflow", "start-stream-workflow", "stream-workflow-completion",
        "workflow-completed-consumers", "workflow-completion", "workflow-timeout-check"]
    assert [s.name for s in app.subscribers("workflow.step.process")] == [
        "process-workflow-step"]
    assert [s.name for s in app.subscribers("workflow.stream.step.process")] == [
        "process-stream-workflow-step"]
    assert app.subscribers("workflow.completed") == []
    assert routes(app) == {("POST", "/api/workflow/start"): "start-parallel-workflow",
                           ("POST", "/api/workflow/stream/start"): "start-stream-workflow",
                           ("GET", "/api/workflow/{workflowId}"): "get-workflow"}
    assert [s.name for s in app.with_trigger(t.StateTrigger)] == ["workflow-completion"]
    assert [s.name for s in app.with_trigger(t.StreamTrigger)] == [
        "stream-workflow-completion"]
    assert list(app.streams) == ["workflows"]
    assert [s.name for s in app.with_trigger(t.CronTrigger)] == ["workflow-timeout-check"]
    assert app.steps["workflow-completed-consumers"].config.is_noop
    assert app.flows == ["workflow-orchestration"]


def test_user_registration_example_loads() -> None:
    app = load_app(EXAMPLES / "user-registration")
    assert (app.name, app.settings.port) == ("user-registration", 3111)
    assert sorted(app.steps) == ["GetUserStatus", "LogNotification", "RegisterUser",
                                 "SendWelcomeEmail", "SetupUserAccount"]
    assert sorted(s.name for s in app.subscribers("user.registered")) == [
        "SendWelcomeEmail", "SetupUserAccount"]
    assert [s.name for s in app.subscribers("email.sent")] == ["LogNotification"]
    assert app.subscribers("account.setup.completed") == []
    assert routes(app) == {("POST", "/users/register"): "RegisterUser",
                           ("GET", "/users/{userId}/status"): "GetUserStatus"}
    assert app.steps["RegisterUser"].config.enqueues == ("user.registered",)
    assert app.flows == ["user-registration"]


@pytest.mark.parametrize(("body", "loc", "msg"), [
    ({"name": "A", "email": "a@b.co", "password": "12345678"}, ["name"],
     "Name must be at least 2 characters"),
    ({"name": "Al", "email": "not-an-email", "password": "12345678"}, ["email"],
     "Invalid email address"),
    ({"name": "Al", "email": "a@b.co", "password": "short"}, ["password"],
     "Password must be at least 8 characters"),
])
def test_user_registration_body_rules(body: dict[str, str], loc: list[str], msg: str) -> None:
    from raypipe.errors import SchemaValidationError

    app = load_app(EXAMPLES / "user-registration")
    (tr,) = app.steps["RegisterUser"].triggers_of(t.HttpTrigger)
    with pytest.raises(SchemaValidationError) as info:
        tr.body_schema.validate(body)
    (err,) = info.value.errors
    assert err["loc"] == loc
    assert msg in err["msg"]


def test_a_mixed_motia_apps_typescript_is_listed_and_its_streams_known(tmp_path: Path) -> None:
    """The TypeScript steps of a mixed Motia app are said to be skipped, and a Python step
    writes a stream its `*.stream.ts` declares (read by the config's `name`)."""
    from typer.testing import CliRunner

    from raypipe.cli import app as cli
    from raypipe.testing import TestApp

    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "search.step.ts").write_text(
        "export const config = { type: 'api', name: 'Search', path: '/search' }\n")
    (steps / "progress.stream.ts").write_text(
        "import { z } from 'zod'\n"
        "export const config = {\n  name: 'propertySearchProgress',\n"
        "  schema: z.object({ done: z.number() }),\n  baseConfig: { storageType: 'default' },\n}\n")
    (steps / "report_step.py").write_text(
        "config = {'type': 'event', 'name': 'Report', 'subscribes': ['searched'], 'emits': []}\n"
        "async def handler(input, context):\n"
        "    await context.streams.propertySearchProgress.set('s', 'x', {'done': 3})\n")
    app = load_app(tmp_path)
    assert app.skipped == ("steps/search.step.ts",)
    assert "propertySearchProgress" in app.streams
    with TestApp(tmp_path) as test_app:
        test_app.enqueue("searched", {})
        test_app.run_until_idle()
        assert test_app.streams.get("propertySearchProgress", "s", "x") == {"done": 3,
                                                                             "id": "x"}
    shown = CliRunner().invoke(cli, ["flows", str(tmp_path)])
    assert shown.exit_code == 0
    assert "not run" in shown.output and "steps/search.step.ts" in shown.output
