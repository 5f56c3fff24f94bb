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


async def test_a_turns_first_full_part_is_sent_mid_turn_and_each_next_once_the_last_answered(
        ) -> None:
    started: list[list[int]] = []  # what send was called with, as it was called
    answers: list[asyncio.Future[list[Outcome[int]]]] = []

    def send(items: list[int]) -> asyncio.Future[list[Outcome[int]]]:
        started.append(items)
        answers.append(asyncio.get_running_loop().create_future())
        return answers[-1]

    def answer(k: int) -> None:
        answers[k].set_result([(True, i * 10) for i in started[k]])

    b: LoopBatcher[int, int] = LoopBatcher(send, most=4)
    futs = [b.call(i) for i in range(4)]
    assert started == [[0, 1, 2, 3]]  # sent within the turn, as the 4th was made
    futs += [b.call(i) for i in range(4, 10)]
    assert started == [[0, 1, 2, 3]]  # the next part waits for the first's answer
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == [[0, 1, 2, 3]]
    answer(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == [[0, 1, 2, 3], [4, 5, 6, 7]]
    answer(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    answer(2)
    assert await asyncio.gather(*futs) == [i * 10 for i in range(10)]
    # A turn of fewer than ``most`` is one send at its end, in flight beside the last.
    later = [b.call(i) for i in range(20, 22)]
    again = b.call(30)
    assert len(started) == 3
    await asyncio.sleep(0)
    assert started[3:] == [[20, 21, 30]]
    answer(3)
    assert await asyncio.gather(*later, again) == [200, 210, 300]


async def test_a_part_that_fails_to_send_fails_its_callers_and_the_next_part_goes() -> None:
    calls = 0

    def send(items: list[int]) -> asyncio.Future[list[Outcome[int]]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("no actor")
        fut: asyncio.Future[list[Outcome[int]]] = asyncio.get_running_loop().create_future()
        fut.set_result([(True, i * 10) for i in items])
        return fut

    b: LoopBatcher[int, int] = LoopBatcher(send, most=2)
    got = await asyncio.gather(*(b.call(i) for i in range(3)), return_exceptions=True)
    assert [type(e) for e in got[:2]] == [ConnectionError] * 2 and got[2] == 20


async def test_parts_whose_order_does_not_matter_go_as_soon_as_they_are_full() -> None:
    """Only parts holding ordered items (odd numbers here) wait for the last such part."""
    started: list[list[int]] = []
    answers: list[asyncio.Future[list[Outcome[int]]]] = []

    def send(items: list[int]) -> asyncio.Future[list[Outcome[int]]]:
        started.append(items)
        answers.append(asyncio.get_running_loop().create_future())
        return answers[-1]

    b: LoopBatcher[int, int] = LoopBatcher(
        send, most=2, ordered=lambda items: any(i % 2 for i in items))
    futs = [b.call(i) for i in (1, 3, 0, 2, 4, 6, 5, 7)]
    assert started == [[1, 3], [0, 2], [4, 6]]  # [5, 7] waits for [1, 3]'s answer
    for k in range(3):
        answers[k].set_result([(True, i * 10) for i in started[k]])
    assert await asyncio.gather(*futs[:6]) == [10, 30, 0, 20, 40, 60]
    await asyncio.sleep(0)
    assert started[3:] == [[5, 7]]
    answers[3].set_result([(True, 50), (True, 70)])
    assert await asyncio.gather(*futs[6:]) == [50, 70]
