"""raypipe.schemas.Schema over the three schema kinds, and dump_json."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from raypipe.errors import SchemaValidationError
from raypipe.schemas import Schema, dump_json


class Address(BaseModel):
    city: str
    zip: str


class User(BaseModel):
    name: str
    age: int
    address: Address


def errors_of(schema: Schema, value: object) -> list[dict]:
    with pytest.raises(SchemaValidationError) as info:
        schema.validate(value, what="body")
    assert str(info.value).startswith("body is invalid")
    return info.value.errors


def test_model_schema_returns_the_instance() -> None:
    schema = Schema(User)
    user = schema.validate({"name": "Ann", "age": "42", "address": {"city": "Oslo", "zip": "1"}})
    assert isinstance(user, User)
    assert user.age == 42
    assert user.address.city == "Oslo"
    assert schema.is_model
    assert schema.name == "User"
    assert schema.json_schema()["required"] == ["name", "age", "address"]


def test_model_schema_reports_field_locations() -> None:
    errs = errors_of(Schema(User), {"name": "Ann", "age": "old", "address": {"city": "Oslo"}})
    assert sorted(tuple(e["loc"]) for e in errs) == [("address", "zip"), ("age",)]
    assert {e["type"] for e in errs} == {"int_parsing", "missing"}
    assert all(set(e) == {"loc", "msg", "type"} for e in errs)


def test_type_adapter_schema() -> None:
    schema = Schema(list[Literal["a", "b"]])
    assert schema.validate(["a", "b"]) == ["a", "b"]
    assert not schema.is_model
    errs = errors_of(schema, ["a", "c"])
    assert [e["loc"] for e in errs] == [[1]]


def test_json_schema_dict() -> None:
    spec = {
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "items": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["id"],
    }
    schema = Schema(spec)
    value = {"id": "o1", "items": [1, 2]}
    assert schema.validate(value) is value
    assert schema.name == "Order"
    assert schema.json_schema() == spec
    errs = errors_of(schema, {"items": [1, "x"]})
    assert sorted(e["loc"] for e in errs) == [[], ["items", 1]]
    assert {e["type"] for e in errs} == {"required", "type"}


def test_invalid_json_schema_dict_is_rejected() -> None:
    import jsonschema

    with pytest.raises(jsonschema.SchemaError):
        Schema({"type": "nope"})


def test_dump_json_turns_models_into_plain_values_at_any_depth() -> None:
    user = User(name="Ann", age=3, address=Address(city="Oslo", zip="1"))
    out = dump_json({"user": user, "list": [user, (1, "x")], 7: None})
    plain = {"name": "Ann", "age": 3, "address": {"city": "Oslo", "zip": "1"}}
    assert out == {"user": plain, "list": [plain, [1, "x"]], "7": None}
    assert type(out["user"]) is dict
