"""An http step's request body as its handler gets it: JSON (validated against the trigger's
``body_schema``), or, where the trigger ``accepts`` them, a ``multipart/form-data`` upload (a
:class:`~raypipe.models.Form`) or the bytes of another media type. The guard has already held
the body to the step's size limit."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile

from raypipe.jsonvalues import JSONLimitError, parse_json
from raypipe.models import Form, UploadedFile
from raypipe.schemas import Schema
from raypipe.trigger_kinds.http import MULTIPART, HttpTrigger, accepted

__all__ = ["MAX_FORM_FIELDS", "MAX_FORM_FILES", "read_body"]

#: Parts a form may have (Starlette's defaults; a part's text is held to 1 MiB by it too).
MAX_FORM_FILES = 1000
MAX_FORM_FIELDS = 1000


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


async def read_body(request: Request, raw: bytes, tr: HttpTrigger, max_depth: int) -> Any:
    content_type = request.headers.get("content-type")
    media = media_type(content_type)
    schema: Schema | None = tr.body_schema
    if raw.strip() and media and not is_json(media) and accepted(tr, media):
        if media == MULTIPART:
            return await _form(request, schema)
        return raw
    return _json(raw, schema, content_type, media, max_depth, tr)


def _json(raw: bytes, schema: Schema | None, content_type: str | None, media: str,
          max_depth: int, tr: HttpTrigger) -> Any:
    if not raw.strip():
        # An empty body validates as {} so that a schema whose fields all have defaults works
        # with a bare POST, as in Motia's `request.body ?? {}`.
        return schema.validate({}, what="body") if schema else None
    if (schema is not None or tr.accepts) and not is_json(media):
        # Only JSON reaches a schema: a cross-site form or "simple" request cannot send it.
        takes = ", ".join(["application/json", *tr.accepts])
        raise HTTPException(415, f"this endpoint takes {takes}, not "
                                 f"{content_type or 'a body without a Content-Type'}")
    try:
        data = parse_json(raw, max_depth)
    except JSONLimitError as exc:
        raise RequestValidationError(
            [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]) from None
    except ValueError as exc:
        if schema is None:
            return raw.decode(errors="replace")
        raise RequestValidationError(
            [{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]) from exc
    return schema.validate(data, what="body") if schema else data


async def _form(request: Request, schema: Schema | None) -> Form:
    try:
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    except HTTPException:
        raise
    except Exception as exc:  # a malformed body: python-multipart's errors
        raise HTTPException(400, f"the multipart body cannot be read: {exc}") from None
    fields: dict[str, Any] = {}
    files: list[UploadedFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append(UploadedFile(name, value.filename or "",
                                      value.content_type or "application/octet-stream",
                                      await value.read()))
            await value.close()
        elif name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    await form.close()
    return Form(schema.validate(fields, what="body") if schema else fields, tuple(files))
