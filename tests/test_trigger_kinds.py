"""Trigger kinds are a registry: every kind has its spec, and a new kind is one module and a line
of the enum. The last test adds a kind to a copy of raypipe, changing nothing else, and runs
an app that uses it (read from a Motia dict, checked, drawn, matched and delivered)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import raypipe
from raypipe import trigger_kind
from raypipe.errors import ConfigFieldError
from raypipe.step_configs import check_config
from raypipe.trigger_kind import TriggerKind

PACKAGE = Path(raypipe.__file__).resolve().parent


def test_every_kind_has_a_spec_and_every_name_finds_it() -> None:
    assert [spec.kind for spec in trigger_kind.kinds()] == list(TriggerKind)
    assert trigger_kind.lookup("api") is trigger_kind.get(TriggerKind.HTTP)
    assert trigger_kind.lookup("event") is trigger_kind.get("queue")
    assert trigger_kind.lookup("webhook") is None
    # A kind read back from a JSON journal is a plain string: it finds the same spec.
    assert trigger_kind.get("cron").kind is TriggerKind.CRON
    assert f"{TriggerKind.STREAM}" == str(TriggerKind.STREAM) == "stream"


def test_an_unknown_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigFieldError) as info:
        check_config({"name": "x", "triggers": [{"type": "webhook"}]})
    assert info.value.field == "triggers[0].type"
    assert "http, queue, cron, state, stream" in info.value.message


_STATE_KEY = '''\
"""The state_key kind: fires on the changes of one key of a state group."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raypipe.errors import ConfigFieldError
from raypipe.models import StateTriggerInput
from raypipe.trigger_kind import (
    ChangeSource, Condition, KindSpec, Source, Trigger, TriggerKind, pick,
)


@dataclass(frozen=True)
class StateKeyTrigger:
    group_id: str
    key: str
    condition: Condition | None = None
    type: TriggerKind = field(default=TriggerKind.STATE_KEY, init=False)


def state_key(group_id: str, key: str, condition: Condition | None = None) -> StateKeyTrigger:
    return StateKeyTrigger(group_id, key, condition)


class StateKeyKind(KindSpec):
    kind = TriggerKind.STATE_KEY
    trigger_type = StateKeyTrigger
    aliases = ("stateKey",)
    shape: ClassVar[tuple[str, str]] = ('[["', '"]]')
    fires_on = ChangeSource.STATE

    def from_dict(self, d: Mapping[str, Any], where: str) -> StateKeyTrigger:
        return StateKeyTrigger(pick(d, "groupId", "group_id", default=""),
                               d.get("key", ""), d.get("condition"))

    def check(self, trigger: StateKeyTrigger, where: str) -> StateKeyTrigger:
        if not trigger.key:
            raise ConfigFieldError(f"{where}.key", "must name a key")
        return trigger

    def label(self, trigger: StateKeyTrigger) -> str:
        return f"state:{trigger.group_id}/{trigger.key}"

    def source(self, trigger: StateKeyTrigger) -> Source:
        return Source("state", "state", "state change")

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        return StateTriggerInput(**delivery.payload), step.triggers_of(StateKeyTrigger)[0]

    def matches(self, trigger: StateKeyTrigger, change: StateTriggerInput) -> bool:
        return (trigger.group_id, trigger.key) == (change.group_id, change.item_id)


SPEC = StateKeyKind()
'''

_APP = {
    "writer.step.py": '''
        config = {"name": "writer", "triggers": [{"type": "queue", "topic": "go"}],
                  "flows": ["f"]}

        async def handler(data, ctx):
            await ctx.state.set("g", "other", 1)
            await ctx.state.set("g", "watched", data["n"])
            await ctx.state.set("g", "watched", data["n"] + 1)
    ''',
    "watcher.step.py": '''
        config = {"name": "watcher", "flows": ["f"],
                  "triggers": [{"type": "stateKey", "groupId": "g", "key": "watched"}]}

        async def handler(change, ctx):
            seen = await ctx.state.get("seen", "values") or []
            await ctx.state.set("seen", "values", seen + [change.new_value])
    ''',
}

_RUN = '''
import sys
import raypipe
from raypipe.flows import build_graph, to_mermaid, to_text
from raypipe.loader import load_app
from raypipe.testing import TestApp

assert raypipe.__file__.startswith(sys.argv[1]), raypipe.__file__
with TestApp(sys.argv[2]) as app:
    app.enqueue("go", {"n": 10})
    app.run_until_idle()
    print("seen", app.state.get("seen", "values"))
graph = build_graph(load_app(sys.argv[2]))
print(to_text(graph))
print(to_mermaid(graph))
'''


def _changed(original: Path, copy: Path) -> list[str]:
    """Files of ``copy`` that are new or differ from ``original`` (bytecode aside)."""
    out = []
    for path in sorted(copy.rglob("*.py")):
        rel = path.relative_to(copy)
        if "__pycache__" in rel.parts:
            continue
        before = original / rel
        if not before.exists() or not filecmp.cmp(before, path, shallow=False):
            out.append(str(rel))
    return out


def test_a_new_kind_is_its_module_and_a_line_of_the_enum(tmp_path: Path) -> None:
    copy = tmp_path / "pkg" / "raypipe"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    registry = copy / "trigger_kind.py"
    text = registry.read_text()
    for anchor, added in (
        ('    STREAM = "stream"\n\n    def __str__', '    STATE_KEY = "state_key"\n'),
        ('    TriggerKind.STREAM: "raypipe.trigger_kinds.stream",\n',
         '    TriggerKind.STATE_KEY: "raypipe.trigger_kinds.state_key",\n'),
    ):
        assert text.count(anchor) == 1, anchor
        at = text.index(anchor) + len(anchor.partition("\n")[0]) + 1
        text = text[:at] + added + text[at:]
    registry.write_text(text)
    (copy / "trigger_kinds" / "state_key.py").write_text(_STATE_KEY)
    # With this test, three files: the module, the enum's two lines, the test.
    assert _changed(PACKAGE, copy) == ["trigger_kind.py", "trigger_kinds/state_key.py"]

    app = tmp_path / "app"
    (app / "steps").mkdir(parents=True)
    for name, source in _APP.items():
        (app / "steps" / name).write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    run = subprocess.run([sys.executable, "-c", _RUN, str(copy.parent), str(app)],
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # Only the watched key's changes, in commit order, each once.
    assert "seen [10, 11]" in run.stdout
    assert "watcher [state_key] state:g/watched" in run.stdout
    assert '[["state:g/watched"]]' in run.stdout.replace("watcher<br/>", "")
