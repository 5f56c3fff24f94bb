"""A step's response body is written as FastAPI's JSONResponse would write it, whichever way
raypipe takes to get there (plain JSON data skips jsonable_encoder's walk)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from raypipe.http.routes import _render
from raypipe.models import ApiResponse

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


class Colour(str, enum.Enum):
    RED = "red"


class Item(BaseModel):
    name: str
    at: dt.datetime


def _as_fastapi_would(body: Any) -> bytes:
    return bytes(JSONResponse(jsonable_encoder(body)).body)


@given(json_data.filter(lambda body: body is not None))  # None: a response without a body
def test_plain_json_bodies_are_written_as_fastapi_writes_them(body: Any) -> None:
    resp = _render(ApiResponse(200, body), "t")
    assert bytes(resp.body) == _as_fastapi_would(body)
    assert resp.headers["content-type"] == "application/json"


def test_other_bodies_go_through_jsonable_encoder() -> None:
    at = dt.datetime(2026, 11, 22, 0, 30, tzinfo=dt.timezone.utc)
    for body in (Item(name="é", at=at), {"when": at, "id": uuid.UUID(int=1)}, {"c": Colour.RED},
                 (1, 2), {"nested": [Item(name="x", at=at)]}, {1: "int key"}):
        assert bytes(_render(ApiResponse(201, body), "t").body) == _as_fastapi_would(body)
