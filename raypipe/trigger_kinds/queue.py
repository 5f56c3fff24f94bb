"""The queue kind: a subscription to a topic; every subscriber gets its own copy of each
message, with its own retries, backoff, FIFO groups and concurrency limit."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from raypipe.errors import ConfigFieldError
from raypipe.schemas import compile_schema
from raypipe.trigger_kind import (
    Condition,
    KindSpec,
    Trigger,
    TriggerKind,
    check_condition_field,
    pick,
    read_topics,
)

__all__ = ["QueueConfig", "QueueTrigger", "queue", "queue_config"]


@dataclass(frozen=True)
class QueueConfig:
    """Delivery settings of one queue subscription (Motia's ``infrastructure.queue``)."""

    type: Literal["standard", "fifo"] = "standard"
    max_retries: int = 3
    backoff: Literal["exponential", "fixed"] = "exponential"
    backoff_delay_ms: int = 1000
    #: The longest wait between two attempts, however many failed (exponential backoff
    #: doubles up to it).
    max_backoff_ms: int = 60_000
    delay_seconds: float = 0.0
    #: Seconds a handler may run before the attempt counts as failed.
    visibility_timeout: float | None = None
    #: Deliveries of this step in flight at once; ``None`` means no limit.
    concurrency: int | None = None


@dataclass(frozen=True)
class QueueTrigger:
    topic: str
    input: Any = None
    config: QueueConfig = field(default_factory=QueueConfig)
    condition: Condition | None = None
    type: TriggerKind = field(default=TriggerKind.QUEUE, init=False)


def queue(
    topic: str,
    input: Any = None,
    config: QueueConfig | None = None,
    condition: Condition | None = None,
) -> QueueTrigger:
    """A subscription to ``topic``; every subscriber gets its own copy of each message."""
    return QueueTrigger(topic, input, config or QueueConfig(), condition)


_QUEUE_KEYS = {
    "type": "type", "maxRetries": "max_retries", "max_retries": "max_retries",
    "backoff": "backoff", "backoffType": "backoff", "backoff_type": "backoff",
    "backoffDelayMs": "backoff_delay_ms", "backoff_delay_ms": "backoff_delay_ms",
    "maxBackoffMs": "max_backoff_ms", "max_backoff_ms": "max_backoff_ms",
    "delaySeconds": "delay_seconds", "delay_seconds": "delay_seconds",
    "visibilityTimeout": "visibility_timeout", "visibility_timeout": "visibility_timeout",
    "concurrency": "concurrency", "maxConcurrency": "concurrency",
}


def queue_config(value: Any, where: str) -> QueueConfig:
    """A :class:`QueueConfig` from one, a Motia dict (camelCase or snake_case) or ``None``."""
    if value is None:
        return QueueConfig()
    if isinstance(value, QueueConfig):
        return value
    if not isinstance(value, Mapping):
        raise ConfigFieldError(where, "must be a QueueConfig or a dict")
    kwargs = {}
    for k, v in value.items():
        if k not in _QUEUE_KEYS:
            raise ConfigFieldError(f"{where}.{k}",
                                   f"unknown queue setting; known: {sorted(_QUEUE_KEYS)}")
        kwargs[_QUEUE_KEYS[k]] = v
    return QueueConfig(**kwargs)


def _check_config(c: QueueConfig, where: str) -> None:
    if c.type not in ("standard", "fifo"):
        raise ConfigFieldError(f"{where}.type", "must be 'standard' or 'fifo'")
    if c.backoff not in ("exponential", "fixed"):
        raise ConfigFieldError(f"{where}.backoff", "must be 'exponential' or 'fixed'")
    if not isinstance(c.max_retries, int) or c.max_retries < 0:
        raise ConfigFieldError(f"{where}.max_retries", "must be an integer >= 0")
    if c.concurrency is not None and (not isinstance(c.concurrency, int) or c.concurrency < 1):
        raise ConfigFieldError(f"{where}.concurrency", "must be an integer >= 1")
    for name in ("backoff_delay_ms", "max_backoff_ms", "delay_seconds"):
        v = getattr(c, name)
        if v is not None and (not isinstance(v, (int, float)) or v < 0):
            raise ConfigFieldError(f"{where}.{name}", "must be >= 0")
    v = c.visibility_timeout
    if v is not None and (not isinstance(v, (int, float)) or v <= 0):
        raise ConfigFieldError(f"{where}.visibility_timeout", "must be a number > 0")


class QueueKind(KindSpec):
    kind = TriggerKind.QUEUE
    trigger_type = QueueTrigger
    aliases = ("event",)
    legacy_type = "event"
    legacy_fields: ClassVar[Mapping[str, str]] = {"config": "infrastructure.queue",
                                                  "topic": "subscribes"}
    shape: ClassVar[tuple[str, str]] = ('["', '"]')  # box
    condition_at_run = True

    def from_dict(self, d: Mapping[str, Any], where: str) -> QueueTrigger:
        cfg = pick(d, "config", "infrastructure", default=None)
        if isinstance(cfg, Mapping) and "queue" in cfg:
            cfg = cfg["queue"]
        return QueueTrigger(pick(d, "topic", default=""), d.get("input"),
                            queue_config(cfg, f"{where}.config"), d.get("condition"))

    def from_legacy(self, d: Mapping[str, Any]) -> list[Trigger]:
        """0.x's event step: one trigger per topic in ``subscribes``."""
        infra = d.get("infrastructure") or {}
        cfg = queue_config(infra.get("queue") if isinstance(infra, Mapping) else None,
                           "infrastructure.queue")
        out: list[Trigger] = [QueueTrigger(topic, d.get("input"), cfg, d.get("condition"))
                              for topic in read_topics(d.get("subscribes"), "subscribes")]
        if not out:
            raise ConfigFieldError("subscribes", "an event step must subscribe to a topic")
        return out

    def check(self, trigger: QueueTrigger, where: str) -> QueueTrigger:
        check_condition_field(trigger.condition, where)
        if not isinstance(trigger.config, QueueConfig):
            # queue("topic", config={"maxRetries": 5}), as Motia 1.x writes it
            trigger = dataclasses.replace(
                trigger, config=queue_config(trigger.config, f"{where}.config"))
        if not isinstance(trigger.topic, str) or not trigger.topic:
            raise ConfigFieldError(f"{where}.topic", "must be a non-empty topic name")
        _check_config(trigger.config, f"{where}.config")
        return dataclasses.replace(trigger, input=compile_schema(trigger.input, f"{where}.input"))

    def label(self, trigger: QueueTrigger) -> str:
        return trigger.topic

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        trigger: QueueTrigger = step.queue_trigger(delivery.topic)
        if trigger.input is None:
            return delivery.payload, trigger
        return trigger.input.validate(delivery.payload,
                                      what=f"message on {delivery.topic!r}"), trigger


SPEC = QueueKind()
