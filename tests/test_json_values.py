"""What may be stored and sent: plain JSON only, with a clear error naming where it is not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from raypipe.calls import Calls
from raypipe.errors import NotJSONError
from raypipe.jsonvalues import JSONLimitError, parse_json, plain_json
from raypipe.runtime_protocols import Origin
from raypipe.state.api import StateAPI


class Point(BaseModel):
    x: int


class Store:
    def __init__(self) -> None:
        self.writes: list[Any] = []

    async def set(self, group: str, key: str, value: Any, origin: Origin) -> Any:
        self.writes.append(value)
        return None, value

    async def update(self, group: str, key: str, ops: Any, origin: Origin) -> Any:
        self.writes.append(ops)
        return None, {}


@pytest.mark.parametrize("value,where", [
    ({"obj": object()}, "obj"), ({"n": float("nan")}, "n"), ({"a": [1, float("inf")]}, "a.1"),
    ({"s": "Bo\ud800b"}, "s"), ({(1, 2): "tuple key"}, "the top"),
])
def test_state_writes_of_values_that_are_not_json_raise_and_store_nothing(
        value: Any, where: str) -> None:
    store = Store()

    async def write(update: bool) -> None:
        api = StateAPI(store, lambda target: Origin("t"), Calls())  # type: ignore[arg-type]
        if update:
            await api.update("g", "k", [{"type": "set", "path": "v", "value": value}])
        else:
            await api.set("g", "k", value)

    with pytest.raises(NotJSONError) as err:
        asyncio.run(write(update=False))
    assert err.value.path == where or where in str(err.value)
    assert "g/k" in str(err.value)
    with pytest.raises(NotJSONError):
        asyncio.run(write(update=True))
    assert store.writes == []


def test_a_state_write_reaches_the_store_as_json() -> None:
    """Checked once, where it enters: the backends store what ctx.state passes on."""
    store = Store()

    async def write() -> None:
        api = StateAPI(store, lambda target: Origin("t"), Calls())  # type: ignore[arg-type]
        await api.set("g", "k", {"t": (1, 2), 3: "x", "p": Point(x=1)})

    asyncio.run(write())
    assert store.writes == [{"t": [1, 2], "3": "x", "p": {"x": 1}}]


def test_models_and_number_keys_become_json() -> None:
    assert plain_json({"p": Point(x=1), 2: (1, 2), True: None}, "v") == {
        "p": {"x": 1}, "2": [1, 2], "true": None}


def test_request_bodies_past_the_limits() -> None:
    assert parse_json(b'{"a": [1, {"b": "\\u00e9"}]}') == {"a": [1, {"b": "\u00e9"}]}
    with pytest.raises(JSONLimitError, match="nested deeper"):
        parse_json(b"[" * 10_000 + b"]" * 10_000)
    with pytest.raises(JSONLimitError, match="nested deeper than 3"):
        parse_json(b"[[[[1]]]]", max_depth=3)
    with pytest.raises(JSONLimitError, match="surrogate"):
        parse_json(b'{"name": "Bo\\ud800b"}')
    with pytest.raises(ValueError):
        parse_json(b"{not json")
