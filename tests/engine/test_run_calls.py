"""The receiving end of a loop batch (``run_calls``): each call starts at once, in order; those
that finish without waiting cost no task, those that wait go on concurrently; each call gets
its own outcome, and a cancelled batch cancels what it waits on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raypipe.engine.loopbatch import run_calls, start_eagerly


class Target:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.gate = asyncio.Event()

    async def quick(self, name: str) -> str:
        self.events.append(f"quick {name}")
        return name.upper()

    async def waits(self, name: str) -> str:
        self.events.append(f"start {name}")
        await self.gate.wait()
        self.events.append(f"end {name}")
        return name * 2

    async def yields(self, name: str) -> str:
        await asyncio.sleep(0)  # a bare yield, not a future
        return f"{name}!"

    async def fails(self, name: str) -> str:
        raise ValueError(f"no {name}")

    async def fails_later(self, name: str) -> str:
        await asyncio.sleep(0.01)
        raise KeyError(name)

    async def private(self) -> None:
        raise AssertionError("not allowed: never called")


ALLOWED = {"quick", "waits", "yields", "fails", "fails_later"}


async def test_calls_start_in_order_and_each_gets_its_outcome() -> None:
    target = Target()

    async def open_gate() -> None:
        await asyncio.sleep(0.01)
        target.gate.set()

    opener = asyncio.ensure_future(open_gate())
    outcomes = await run_calls(target, [
        ("waits", ("a",)), ("quick", ("b",)), ("fails", ("c",)), ("yields", ("d",)),
        ("fails_later", ("e",)), ("private", ()), ("waits", ("f",))], ALLOWED)
    await opener
    assert [ok for ok, _ in outcomes] == [True, True, False, True, False, False, True]
    assert [v for ok, v in outcomes if ok] == ["aa", "B", "d!", "ff"]
    errors = [v for ok, v in outcomes if not ok]
    assert isinstance(errors[0], ValueError) and "no c" in str(errors[0])
    assert isinstance(errors[1], KeyError)
    assert isinstance(errors[2], ValueError) and "cannot be batched" in str(errors[2])
    # Started in the order made; the quick one ran to its end before the next started.
    assert target.events[:3] == ["start a", "quick b", "start f"]
    assert sorted(target.events[3:]) == ["end a", "end f"]


async def test_a_call_that_finishes_at_once_makes_no_task() -> None:
    target = Target()
    before = len(asyncio.all_tasks())
    started = start_eagerly(target.quick("x"))
    assert started == (True, "X")
    assert len(asyncio.all_tasks()) == before


async def test_cancelling_the_batch_cancels_what_a_call_waits_on() -> None:
    target = Target()
    seen: list[str] = []

    async def waits_and_sees() -> None:
        try:
            await target.gate.wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    target.waits_and_sees = waits_and_sees  # type: ignore[attr-defined]
    batch = asyncio.ensure_future(run_calls(target, [("waits_and_sees", ())],
                                            {"waits_and_sees"}))
    await asyncio.sleep(0.01)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert seen == ["cancelled"]


async def test_a_result_set_from_another_thread_resumes_the_call() -> None:
    """A batched call awaiting what another thread completes (an actor call's answer)."""
    loop = asyncio.get_running_loop()

    class Threaded:
        async def far(self, n: int) -> Any:
            fut: asyncio.Future[int] = loop.create_future()
            loop.call_soon_threadsafe(fut.set_result, n + 1)
            return await fut

    outcomes = await asyncio.wait_for(
        run_calls(Threaded(), [("far", (i,)) for i in range(50)], {"far"}), 5)
    assert outcomes == [(True, i + 1) for i in range(50)]


async def test_a_cancel_that_finds_the_future_done_still_reaches_the_call() -> None:
    """The awaiting task is cancelled after the future it waits on got its result but before
    the task resumed: the call sees the cancellation, as it would in a task of its own."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []

    async def waits() -> int:
        try:
            return await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    started = start_eagerly(waits())
    assert not isinstance(started, tuple)
    task = asyncio.ensure_future(started)
    await asyncio.sleep(0)  # the task now waits on fut
    fut.set_result(1)  # done: the task's wake-up is scheduled...
    task.cancel()  # ...and the cancel comes first
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]
