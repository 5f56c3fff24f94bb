"""One interface over the two schema kinds users write: pydantic types and JSON-schema dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from raypipe.errors import ConfigFieldError, SchemaValidationError
from raypipe.jsonvalues import dump_models

__all__ = ["Schema", "compile_response_schemas", "compile_schema", "dump_json", "field_errors"]


def field_errors(exc: PydanticValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without their unpicklable ``ctx``/``url`` parts."""
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


#: Model instances (at any depth) to their JSON form, tuples to lists, keys to strings; what
#: crosses process boundaries (:func:`raypipe.jsonvalues.plain_json` also refuses the rest).
dump_json = dump_models


class Schema:
    """A schema given as a pydantic model (any type pydantic can validate) or a JSON-schema dict.

    ``validate`` returns the model instance for pydantic types and the value itself for
    JSON-schema dicts, so handlers get what they declared.
    """

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self._adapter: TypeAdapter[Any] | None = None
        self._validator: Any = None
        if isinstance(spec, Mapping):
            import jsonschema  # lazily: only apps with dict schemas pay for it

            cls = jsonschema.validators.validator_for(spec)
            cls.check_schema(spec)
            self._validator = cls(spec)
        else:
            self._adapter = TypeAdapter(spec)

    @property
    def name(self) -> str:
        if isinstance(self.spec, Mapping):
            return str(self.spec.get("title", "Schema"))
        return getattr(self.spec, "__name__", repr(self.spec))

    @property
    def is_model(self) -> bool:
        return isinstance(self.spec, type) and issubclass(self.spec, BaseModel)

    def validate(self, value: Any, what: str = "value") -> Any:
        if self._adapter is not None:
            try:
                return self._adapter.validate_python(value)
            except PydanticValidationError as exc:
                raise SchemaValidationError(f"{what} is invalid", field_errors(exc)) from exc
        errors = [
            {"loc": list(err.absolute_path), "msg": err.message, "type": str(err.validator)}
            for err in self._validator.iter_errors(value)
        ]
        if errors:
            raise SchemaValidationError(f"{what} is invalid", errors)
        return value

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        if self._adapter is not None:
            return self._adapter.json_schema(ref_template=ref_template)
        return dict(self.spec)

    def __repr__(self) -> str:
        return f"Schema({self.name})"


def compile_schema(spec: Any, where: str) -> Schema | None:
    """A config's schema (a pydantic type or a JSON-schema dict) compiled; raises
    :class:`~raypipe.errors.ConfigFieldError` at ``where`` if it is neither."""
    if spec is None or isinstance(spec, Schema):
        return spec
    try:
        return Schema(spec)
    except Exception as exc:
        raise ConfigFieldError(where, f"not a usable schema ({exc})") from exc


def compile_response_schemas(spec: Any, where: str) -> Any:
    """``{status: schema}`` stays a mapping; a single schema applies to every status."""
    if spec is None:
        return None
    if isinstance(spec, Mapping) and spec and all(
        isinstance(k, int) or (isinstance(k, str) and k.isdigit()) for k in spec
    ):
        return {int(k): compile_schema(v, f"{where}[{k}]") for k, v in spec.items()}
    return compile_schema(spec, where)
