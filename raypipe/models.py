"""The objects handlers receive and return. Read by attribute; the values inside are JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "EventType",
    "StateTriggerInput",
    "StreamEvent",
    "StreamTriggerInput",
]


@dataclass
class ApiRequest:
    """An HTTP request as an http step sees it.

    ``body`` is the validated model instance when the trigger has a ``body_schema`` that is a
    pydantic type, else the parsed JSON (``None`` for an empty body).
    """

    body: Any = None
    path_params: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str | list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    method: str = "GET"
    path: str = "/"


@dataclass
class ApiResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Any) -> ApiResponse:
        """Accept what handlers return: an ApiResponse, ``{"status", "body", "headers"}``, or
        any other value, which becomes a 200 body (``None`` becomes 204)."""
        if isinstance(value, ApiResponse):
            return value
        if (
            isinstance(value, Mapping)
            and isinstance(value.get("status"), int)
            and set(value) <= {"status", "body", "headers"}
        ):
            return cls(int(value["status"]), value.get("body"), dict(value.get("headers") or {}))
        if value is None:
            return cls(204)
        return cls(200, value)


EventType = Literal["created", "updated", "deleted"]


@dataclass
class StateTriggerInput:
    """A committed change of one state item."""

    group_id: str
    item_id: str
    old_value: Any
    new_value: Any
    event_type: EventType

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StreamEvent:
    #: "create", "update", "delete" or the custom type given to ``send``.
    type: str
    data: Any = None


@dataclass
class StreamTriggerInput:
    stream_name: str
    group_id: str
    id: str | None
    event: StreamEvent

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StreamTriggerInput:
        ev = d["event"]
        event = StreamEvent(ev["type"], ev.get("data"))
        return cls(d["stream_name"], d["group_id"], d.get("id"), event)
