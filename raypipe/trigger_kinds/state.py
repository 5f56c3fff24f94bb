"""The state kind: fires after each committed state change (in ``group_id`` if given) passing
the condition, checked where the change was committed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raypipe.models import StateTriggerInput
from raypipe.trigger_kind import (
    ChangeSource,
    Condition,
    KindSpec,
    Source,
    Trigger,
    TriggerKind,
    check_condition_field,
    pick,
)

__all__ = ["StateTrigger", "state"]

#: The flow graph's pseudo node every state-trigger step hangs from, and its edges' label.
STATE_SOURCE = "state"
STATE_TOPIC = "state change"


@dataclass(frozen=True)
class StateTrigger:
    condition: Condition | None = None
    group_id: str | None = None
    type: TriggerKind = field(default=TriggerKind.STATE, init=False)


def state(condition: Condition | None = None, group_id: str | None = None) -> StateTrigger:
    """Fires after each committed state change (in ``group_id`` if given) passing ``condition``."""
    return StateTrigger(condition, group_id)


class StateKind(KindSpec):
    kind = TriggerKind.STATE
    trigger_type = StateTrigger
    shape: ClassVar[tuple[str, str]] = ('{"', '"}')  # rhombus
    fires_on = ChangeSource.STATE

    def from_dict(self, d: Mapping[str, Any], where: str) -> StateTrigger:
        return StateTrigger(d.get("condition"), pick(d, "groupId", "group_id"))

    def check(self, trigger: StateTrigger, where: str) -> StateTrigger:
        check_condition_field(trigger.condition, where)
        return trigger

    def label(self, trigger: StateTrigger) -> str:
        return STATE_SOURCE + (f":{trigger.group_id}" if trigger.group_id else "")

    def source(self, trigger: StateTrigger) -> Source:
        return Source(STATE_SOURCE, STATE_SOURCE, STATE_TOPIC)

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        return StateTriggerInput(**delivery.payload), step.triggers_of(StateTrigger)[0]

    def matches(self, trigger: StateTrigger, change: StateTriggerInput) -> bool:
        return trigger.group_id is None or trigger.group_id == change.group_id


SPEC = StateKind()
