"""The OpenAPI document of an app's http steps: their parameters, bodies and answers, and the
JSON schemas of every model they use."""


from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from raypipe import triggers as t
from raypipe.schemas import Schema
from raypipe.trigger_kinds.http import MULTIPART

__all__ = ["Components", "openapi_extra"]

_REF = "#/components/schemas/{model}"


class Components:
    """JSON schemas of every model used, for the OpenAPI document's ``components``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, schema: Schema) -> dict[str, Any]:
        js = schema.json_schema(ref_template=_REF)
        self.schemas.update(js.pop("$defs", {}))
        if schema.is_model:
            self.schemas[schema.name] = js
            return {"$ref": _REF.format(model=schema.name)}
        return js


def openapi_extra(
    tr: t.HttpTrigger, comps: Components
) -> tuple[dict[str, Any], dict[int | str, Any]]:
    extra: dict[str, Any] = {}
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"\{([^}:]+)", tr.path)]
    for qp in tr.query_params:
        q = qp if isinstance(qp, Mapping) else {"name": str(qp)}
        params.append({"name": q["name"], "in": "query", "required": False,
                       "description": q.get("description", ""), "schema": {"type": "string"}})
    if params:
        extra["parameters"] = params
    content: dict[str, Any] = {}
    if tr.body_schema is not None:
        content["application/json"] = {"schema": comps.ref(tr.body_schema)}
    for media in tr.accepts:
        if media == MULTIPART:
            # The form's text fields; its files are in the request as parts of their own.
            fields = comps.ref(tr.body_schema) if tr.body_schema is not None else {
                "type": "object"}
            content[media] = {"schema": fields}
        else:
            content[media] = {"schema": {"type": "string", "format": "binary"}}
    if content:
        extra["requestBody"] = {"required": False, "content": content}
    responses: dict[int | str, Any] = {}
    rs = tr.response_schema
    items = rs.items() if isinstance(rs, Mapping) else ([(200, rs)] if rs is not None else [])
    for status, schema in items:
        responses[int(status)] = {"description": f"{status}", "content": {
            "application/json": {"schema": comps.ref(schema)}}}
    return extra, responses


