"""The cron kind: a schedule; the engine delivers each tick (5 cron fields, or 6 with seconds
first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raypipe.errors import ConfigFieldError
from raypipe.schedules import check_cron
from raypipe.trigger_kind import (
    Condition,
    KindSpec,
    Trigger,
    TriggerKind,
    check_condition_field,
    pick,
)

__all__ = ["CronTrigger", "cron"]


@dataclass(frozen=True)
class CronTrigger:
    expression: str
    condition: Condition | None = None
    type: TriggerKind = field(default=TriggerKind.CRON, init=False)


def cron(expression: str, condition: Condition | None = None) -> CronTrigger:
    """A schedule: 5 cron fields, or 6 with seconds first."""
    return CronTrigger(expression, condition)


class CronKind(KindSpec):
    kind = TriggerKind.CRON
    trigger_type = CronTrigger
    legacy_type = "cron"
    legacy_fields: ClassVar[Mapping[str, str]] = {"expression": "cron"}
    shape: ClassVar[tuple[str, str]] = ('{{"', '"}}')  # hexagon
    has_input = False
    condition_at_run = True

    def from_dict(self, d: Mapping[str, Any], where: str) -> CronTrigger:
        return CronTrigger(pick(d, "expression", "cron", default=""), d.get("condition"))

    def check(self, trigger: CronTrigger, where: str) -> CronTrigger:
        check_condition_field(trigger.condition, where)
        problem = check_cron(trigger.expression)
        if problem:
            raise ConfigFieldError(f"{where}.expression", problem)
        return trigger

    def label(self, trigger: CronTrigger) -> str:
        return trigger.expression

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        return None, step.triggers_of(CronTrigger)[0]


SPEC = CronKind()
