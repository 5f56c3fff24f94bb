"""The stream kind: fires on a change of an item of a stream (in a group, or one item),
checked where the change was committed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raypipe.errors import ConfigFieldError
from raypipe.models import StreamTriggerInput
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

__all__ = ["StreamTrigger", "stream"]

STREAM_PREFIX = "stream:"
STREAM_TOPIC = "stream change"


@dataclass(frozen=True)
class StreamTrigger:
    stream_name: str
    group_id: str | None = None
    item_id: str | None = None
    condition: Condition | None = None
    type: TriggerKind = field(default=TriggerKind.STREAM, init=False)


def stream(
    stream_name: str,
    group_id: str | None = None,
    item_id: str | None = None,
    condition: Condition | None = None,
) -> StreamTrigger:
    """Fires on a change of an item of ``stream_name``."""
    return StreamTrigger(stream_name, group_id, item_id, condition)


class StreamKind(KindSpec):
    kind = TriggerKind.STREAM
    trigger_type = StreamTrigger
    shape: ClassVar[tuple[str, str]] = ('(("', '"))')  # circle
    fires_on = ChangeSource.STREAM

    def from_dict(self, d: Mapping[str, Any], where: str) -> StreamTrigger:
        return StreamTrigger(
            pick(d, "streamName", "stream_name", default=""), pick(d, "groupId", "group_id"),
            pick(d, "itemId", "item_id"), d.get("condition"),
        )

    def check(self, trigger: StreamTrigger, where: str) -> StreamTrigger:
        check_condition_field(trigger.condition, where)
        if not isinstance(trigger.stream_name, str) or not trigger.stream_name:
            raise ConfigFieldError(f"{where}.stream_name", "must be a stream name")
        return trigger

    def label(self, trigger: StreamTrigger) -> str:
        """``stream:<name>[/<group>[/<item>]]`` (``/*/<item>``: any group)."""
        label = STREAM_PREFIX + trigger.stream_name
        if trigger.group_id:
            label += f"/{trigger.group_id}"
            if trigger.item_id:
                label += f"/{trigger.item_id}"
        elif trigger.item_id:
            label += f"/*/{trigger.item_id}"
        return label

    def source(self, trigger: StreamTrigger) -> Source:
        key = STREAM_PREFIX + trigger.stream_name
        return Source(key, key, STREAM_TOPIC)

    def handler_input(self, step: Any, delivery: Any) -> tuple[Any, Trigger]:
        return StreamTriggerInput.from_dict(delivery.payload), step.triggers_of(StreamTrigger)[0]

    def matches(self, trigger: StreamTrigger, change: StreamTriggerInput) -> bool:
        return (trigger.stream_name == change.stream_name
                and trigger.group_id in (None, change.group_id)
                and trigger.item_id in (None, change.id))


SPEC = StreamKind()
