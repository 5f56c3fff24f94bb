"""The http kind: a route served by the app's ingress (not delivered by the engine)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raypipe.errors import ConfigFieldError
from raypipe.schemas import compile_response_schemas, compile_schema
from raypipe.trigger_kind import (
    Condition,
    KindSpec,
    TriggerKind,
    check_condition_field,
    pick,
)

__all__ = ["HTTP_METHODS", "MULTIPART", "HttpTrigger", "accepted", "http", "normalize_path"]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_COLON_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)")
MULTIPART = "multipart/form-data"


def normalize_path(path: str) -> str:
    """Motia's ``/users/:userId`` and FastAPI's ``/users/{userId}`` mean the same route."""
    return _COLON_PARAM.sub(r"{\1}", path)


@dataclass(frozen=True)
class HttpTrigger:
    method: str
    path: str
    #: A pydantic type or a JSON-schema dict.
    body_schema: Any = None
    #: One schema for every status, or ``{status: schema}``.
    response_schema: Any = None
    query_params: Sequence[Any] = ()
    middleware: Sequence[Callable[..., Any]] = ()
    condition: Condition | None = None
    #: Media types the step takes besides JSON: ``"multipart/form-data"`` (the handler's
    #: ``request.body`` is a :class:`~raypipe.models.Form`) or any other, such as
    #: ``"application/octet-stream"``, ``"image/*"`` or ``"text/csv"`` (``request.body`` is
    #: the bytes). Others answer 415.
    accepts: Sequence[str] = ()
    #: The step's largest request body in bytes (413 past it); the app's
    #: ``max_body_bytes`` if unset.
    max_body_bytes: int | None = None
    type: TriggerKind = field(default=TriggerKind.HTTP, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", str(self.method).upper())
        object.__setattr__(self, "path", normalize_path(str(self.path)))
        object.__setattr__(self, "accepts", tuple(
            str(a).strip().lower() for a in ([self.accepts] if isinstance(self.accepts, str)
                                             else self.accepts)))


def http(
    method: str,
    path: str,
    body_schema: Any = None,
    response_schema: Any = None,
    query_params: Sequence[Any] | None = None,
    middleware: Sequence[Callable[..., Any]] | None = None,
    condition: Condition | None = None,
    *,
    accepts: Sequence[str] = (),
    max_body_bytes: int | None = None,
) -> HttpTrigger:
    """An HTTP route; ``path`` takes ``{param}`` or ``:param``. ``accepts`` and
    ``max_body_bytes`` take uploads: ``http("POST", "/images", accepts=["multipart/form-data"],
    max_body_bytes=10 << 20)``."""
    return HttpTrigger(
        method, path, body_schema, response_schema, tuple(query_params or ()),
        tuple(middleware or ()), condition, tuple(accepts), max_body_bytes,
    )


def accepted(trigger: HttpTrigger, media: str) -> bool:
    """Whether the trigger takes a body of media type ``media`` (parameters stripped)."""
    major = media.split("/", 1)[0]
    return any(a == media or a == f"{major}/*" or a == "*/*" for a in trigger.accepts)


class HttpKind(KindSpec):
    kind = TriggerKind.HTTP
    trigger_type = HttpTrigger
    aliases = ("api",)
    legacy_type = "api"
    shape: ClassVar[tuple[str, str]] = ('[/"', '"/]')  # parallelogram

    def from_dict(self, d: Mapping[str, Any], where: str) -> HttpTrigger:
        return http(
            pick(d, "method", default="GET"), pick(d, "path", default=""),
            pick(d, "bodySchema", "body_schema"), pick(d, "responseSchema", "response_schema"),
            pick(d, "queryParams", "query_params"), pick(d, "middleware"), d.get("condition"),
            accepts=pick(d, "accepts", default=()),
            max_body_bytes=pick(d, "maxBodyBytes", "max_body_bytes"),
        )

    def check(self, trigger: HttpTrigger, where: str) -> HttpTrigger:
        check_condition_field(trigger.condition, where)
        if trigger.method not in HTTP_METHODS:
            raise ConfigFieldError(f"{where}.method", f"{trigger.method!r} is not an HTTP method")
        if not trigger.path.startswith("/"):
            raise ConfigFieldError(f"{where}.path", f"{trigger.path!r} must start with '/'")
        for i, mw in enumerate(trigger.middleware):
            if not callable(mw):
                raise ConfigFieldError(f"{where}.middleware[{i}]", "must be a function")
        for i, media in enumerate(trigger.accepts):
            if not _MEDIA_TYPE.fullmatch(media):
                raise ConfigFieldError(f"{where}.accepts[{i}]",
                                       f"{media!r} is not a media type (type/subtype)")
        limit = trigger.max_body_bytes
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise ConfigFieldError(f"{where}.max_body_bytes", "must be a number of bytes >= 1")
        return dataclasses.replace(
            trigger,
            body_schema=compile_schema(trigger.body_schema, f"{where}.body_schema"),
            response_schema=compile_response_schemas(trigger.response_schema,
                                                     f"{where}.response_schema"),
        )

    def label(self, trigger: HttpTrigger) -> str:
        return f"{trigger.method} {trigger.path}"


SPEC = HttpKind()
