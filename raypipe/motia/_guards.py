"""Motia's type guards over triggers and loaded steps (``is_api_trigger``, ...)."""

from __future__ import annotations

from typing import Any

from raypipe import triggers as t

__all__ = [
    "get_api_triggers", "get_cron_triggers", "get_queue_triggers", "get_state_triggers",
    "get_stream_triggers", "is_api_step", "is_api_trigger", "is_cron_step", "is_cron_trigger",
    "is_queue_step", "is_queue_trigger", "is_state_step", "is_state_trigger", "is_stream_step",
    "is_stream_trigger",
]


def is_api_trigger(trigger: Any) -> bool:
    return isinstance(trigger, t.HttpTrigger)


def is_queue_trigger(trigger: Any) -> bool:
    return isinstance(trigger, t.QueueTrigger)


def is_cron_trigger(trigger: Any) -> bool:
    return isinstance(trigger, t.CronTrigger)


def is_state_trigger(trigger: Any) -> bool:
    return isinstance(trigger, t.StateTrigger)


def is_stream_trigger(trigger: Any) -> bool:
    return isinstance(trigger, t.StreamTrigger)


def _of(step: Any, kind: type[Any]) -> list[Any]:
    return [tr for tr in step.config.triggers if isinstance(tr, kind)]


def is_api_step(step: Any) -> bool:
    return bool(_of(step, t.HttpTrigger))


def is_queue_step(step: Any) -> bool:
    return bool(_of(step, t.QueueTrigger))


def is_cron_step(step: Any) -> bool:
    return bool(_of(step, t.CronTrigger))


def is_state_step(step: Any) -> bool:
    return bool(_of(step, t.StateTrigger))


def is_stream_step(step: Any) -> bool:
    return bool(_of(step, t.StreamTrigger))


def get_api_triggers(step: Any) -> list[t.HttpTrigger]:
    return _of(step, t.HttpTrigger)


def get_queue_triggers(step: Any) -> list[t.QueueTrigger]:
    return _of(step, t.QueueTrigger)


def get_cron_triggers(step: Any) -> list[t.CronTrigger]:
    return _of(step, t.CronTrigger)


def get_state_triggers(step: Any) -> list[t.StateTrigger]:
    return _of(step, t.StateTrigger)


def get_stream_triggers(step: Any) -> list[t.StreamTrigger]:
    return _of(step, t.StreamTrigger)
