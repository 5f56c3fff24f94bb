"""The objects handlers receive and return. Read by attribute; the values inside are JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, TypeVar

TBody = TypeVar("TBody")

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "EventType",
    "Form",
    "RequestBody",
    "StateTriggerInput",
    "StreamEvent",
    "StreamTriggerInput",
    "UploadedFile",
]


#: Motia 0.x's dict keys of a request (``req["pathParams"]``) and the attributes they name.
_REQUEST_KEYS = {"body": "body", "pathParams": "path_params", "path_params": "path_params",
                 "queryParams": "query_params", "query_params": "query_params",
                 "headers": "headers", "rawBody": "raw_body", "raw_body": "raw_body",
                 "method": "method", "path": "path"}


@dataclass
class ApiRequest(Generic[TBody]):
    """An HTTP request as an http step sees it.

    ``body`` is the validated model instance when the trigger has a ``body_schema`` that is a
    pydantic type, else the parsed JSON (``None`` for an empty body); for a body of a media type
    the trigger ``accepts``, a :class:`Form` (``multipart/form-data``) or the bytes.

    It also answers as Motia's request shapes do: as a dict in 0.x's key names
    (``req.get("pathParams")``, ``req["queryParams"]``; middleware may add keys with
    ``req["user"] = ...``), and as 1.x's ``MotiaHttpArgs`` (``args.request``, and
    ``args.response`` to stream the response, e.g. server-sent events).
    """

    body: TBody | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str | list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    method: str = "GET"
    path: str = "/"
    #: Streams the response instead of returning it (Motia 1.x's ``MotiaHttpResponse``);
    #: set by the server for each request.
    response: Any = field(default=None, repr=False, compare=False)
    #: Keys middleware added (``req["user"] = ...``).
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def request(self) -> ApiRequest[TBody]:
        """Motia 1.x's ``args.request``: the request itself."""
        return self

    @property
    def request_body(self) -> RequestBody:
        """Motia 1.x's channel of the raw body: ``for chunk in req.request_body.stream``."""
        return RequestBody(self.raw_body)

    def _attr(self, key: str) -> str | None:
        return _REQUEST_KEYS.get(key)

    def __getitem__(self, key: str) -> Any:
        attr = self._attr(key)
        if attr is not None:
            return self._value(attr)
        return self.extra[key]

    def __setitem__(self, key: str, value: Any) -> None:
        attr = self._attr(key)
        if attr is not None:
            setattr(self, attr, value)
        else:
            self.extra[key] = value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self._attr(key) is not None or key in self.extra)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return ["body", "pathParams", "queryParams", "headers", "rawBody", "method", "path",
                *self.extra]

    def _value(self, attr: str) -> Any:
        value = getattr(self, attr)
        # Motia 0.x's rawBody is the body as text.
        return value.decode(errors="replace") if attr == "raw_body" else value


@dataclass(frozen=True)
class UploadedFile:
    """A file of a ``multipart/form-data`` body."""

    #: The form field it came in.
    field: str
    #: The name the client gave it (not a path to trust).
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Form:
    """A ``multipart/form-data`` body: its text fields (validated against the trigger's
    ``body_schema`` if it has one) and its files, in the order sent."""

    fields: Any = field(default_factory=dict)
    files: tuple[UploadedFile, ...] = ()

    def file(self, name: str) -> UploadedFile | None:
        """The first file sent in the field ``name``."""
        return next((f for f in self.files if f.field == name), None)


class RequestBody:
    """A request's raw body read as Motia 1.x's channel reader: ``.stream`` yields it."""

    def __init__(self, raw: bytes) -> None:
        self.stream: list[bytes] = [raw] if raw else []

    def read(self) -> bytes:
        return b"".join(self.stream)


@dataclass
class ApiResponse(Generic[TBody]):
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Any) -> ApiResponse[Any]:
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
