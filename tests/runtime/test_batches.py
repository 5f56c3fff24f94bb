"""Batching, Ray-free parts: how ready deliveries are cut into batch tasks, and how many of
those are in flight at once."""

from __future__ import annotations

import asyncio

from raypipe.engine.batching import MAX_BATCH, Batcher, batch_size


def test_a_batch_takes_an_even_share_of_the_free_slots_and_at_most_max() -> None:
    assert batch_size(0, 8) == 0
    assert batch_size(5, 8) == 1
    assert batch_size(100, 8) == 13
    assert batch_size(10_000, 8) == MAX_BATCH
    assert batch_size(33, 1) == MAX_BATCH
    assert batch_size(7, 0) == 7  # no slot free: still a whole batch when one frees


class Recorder:
    """Runs batches as the dispatcher would, recording sizes and the most in flight."""

    def __init__(self, window: int) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.in_flight = self.most = 0
        self.release = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.batcher: Batcher[int] = Batcher(lambda: window, self.run, self.spawn)

    async def run(self, step: str, chunk: list[int]) -> None:
        self.batches.append((step, chunk))
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1

    def spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        self.release.set()
        while self.tasks or self.batcher.waiting:
            await asyncio.sleep(0)


def test_a_fan_out_fills_the_window_then_waits_for_free_slots() -> None:
    async def main() -> Recorder:
        r = Recorder(window=8)
        for i in range(1000):
            r.batcher.add("work", i)
        assert r.batches == []  # cut at the end of this turn of the loop, not before
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(r.batches) == 8 and r.in_flight == 8  # the window, no more
        assert [len(c) for _, c in r.batches] == [MAX_BATCH] * 8
        await r.drain()
        return r

    r = asyncio.run(main())
    assert r.most == 8
    assert [x for _, c in r.batches for x in c] == list(range(1000))  # all, once, in order
    assert max(len(c) for _, c in r.batches) <= MAX_BATCH
    assert r.batcher.running == 0


def test_a_small_fan_out_is_spread_over_the_slots() -> None:
    async def main() -> Recorder:
        r = Recorder(window=8)
        for i in range(20):
            r.batcher.add("work", i)
        await r.drain()
        return r

    r = asyncio.run(main())
    assert sorted(len(c) for _, c in r.batches) == [2] * 4 + [3] * 4


def test_steps_take_turns_for_the_slots() -> None:
    async def main() -> Recorder:
        r = Recorder(window=2)
        for i in range(200):
            r.batcher.add("a", i)
        for i in range(3):
            r.batcher.add("b", i)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # b's three deliveries do not wait behind all of a's.
        assert [step for step, _ in r.batches] == ["a", "b"]
        await r.drain()
        return r

    r = asyncio.run(main())
    assert sorted(x for step, c in r.batches if step == "b" for x in c) == [0, 1, 2]
    assert r.most == 2
