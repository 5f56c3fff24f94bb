"""Calls made in one loop turn go out in one send (Ray-free)."""

from __future__ import annotations

import asyncio

import pytest

from raypipe.engine.loopbatch import LoopBatcher, Outcome


class Recorder:
    def __init__(self) -> None:
        self.sends: list[list[int]] = []

    async def send(self, items: list[int]) -> list[Outcome[int]]:
        self.sends.append(items)
        await asyncio.sleep(0)
        return [(True, i * 10) if i >= 0 else (False, ValueError(f"item {i}")) for i in items]


async def test_one_send_per_turn_in_order() -> None:
    rec = Recorder()
    b: LoopBatcher[int, int] = LoopBatcher(rec.send)
    assert await asyncio.gather(*(b.call(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert await b.call(7) == 70
    assert rec.sends == [[0, 1, 2, 3, 4], [7]]


async def test_each_caller_gets_its_own_error() -> None:
    b: LoopBatcher[int, int] = LoopBatcher(Recorder().send)
    got = await asyncio.gather(b.call(1), b.call(-1), b.call(2), return_exceptions=True)
    assert got[0] == 10 and got[2] == 20
    assert isinstance(got[1], ValueError) and str(got[1]) == "item -1"


async def test_a_failed_send_fails_every_caller() -> None:
    async def broken(items: list[int]) -> list[Outcome[int]]:
        raise ConnectionError("actor gone")

    b: LoopBatcher[int, int] = LoopBatcher(broken)
    got = await asyncio.gather(b.call(1), b.call(2), return_exceptions=True)
    assert [type(e) for e in got] == [ConnectionError, ConnectionError]


async def test_a_cancelled_caller_leaves_the_others() -> None:
    rec = Recorder()
    b: LoopBatcher[int, int] = LoopBatcher(rec.send)
    gone = asyncio.ensure_future(b.call(1))
    kept = b.call(2)
    gone.cancel()
    assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert rec.sends == [[1, 2]]
