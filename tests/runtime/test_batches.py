"""Batching, Ray-free parts: how ready deliveries are cut into batch tasks, and how many of
those are in flight at once."""

from __future__ import annotations

import asyncio

from raypipe.engine.batching import (
    BATCH_SECONDS,
    FIRST_BATCH,
    MAX_BATCH,
    Batcher,
    BatchSize,
    batch_size,
)


def test_a_batch_takes_an_even_share_of_the_free_slots_and_at_most_max() -> None:
    assert batch_size(0, 8) == 0
    assert batch_size(5, 8) == 1
    assert batch_size(100, 8) == 13
    assert batch_size(10_000, 8) == FIRST_BATCH
    assert batch_size(33, 1) == FIRST_BATCH
    assert batch_size(10_000, 8, most=MAX_BATCH) == MAX_BATCH
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
        assert [len(c) for _, c in r.batches] == [FIRST_BATCH] * 8  # none timed yet
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


def test_a_steps_batches_grow_while_quick_and_shrink_when_slow() -> None:
    size = BatchSize()
    assert size.most == FIRST_BATCH
    size.timed(FIRST_BATCH, BATCH_SECONDS / 10)
    assert size.most == 2 * FIRST_BATCH
    size.timed(10, BATCH_SECONDS / 10)  # a batch the backlog left short: says nothing
    assert size.most == 2 * FIRST_BATCH
    for _ in range(10):
        size.timed(size.most, 0.0)
    assert size.most == MAX_BATCH
    size.timed(MAX_BATCH, BATCH_SECONDS * 3)
    assert size.most == MAX_BATCH // 2
    size.timed(MAX_BATCH // 2, BATCH_SECONDS * 0.75)  # within the target: kept
    assert size.most == MAX_BATCH // 2
    for _ in range(20):
        size.timed(size.most, BATCH_SECONDS * 40)
    assert size.most == 1
    size.timed(1, BATCH_SECONDS * 40)  # one delivery is never split
    assert size.most == 1


def test_batches_are_sized_by_how_long_the_steps_tasks_take() -> None:
    # A quick step's batches grow to the largest; a slow one's (each delivery a tenth of
    # the target, its batch taking as long as its deliveries together) shrink to ~10.
    clock = [0.0]

    async def main() -> dict[str, list[int]]:
        sizes: dict[str, list[int]] = {"quick": [], "slow": []}
        tasks: set[asyncio.Task[None]] = set()

        async def run(step: str, chunk: list[int]) -> None:
            sizes[step].append(len(chunk))
            await asyncio.sleep(0)
            clock[0] += len(chunk) * (BATCH_SECONDS / 10 if step == "slow" else 1e-5)

        def spawn(coro: object) -> None:
            task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        batcher: Batcher[int] = Batcher(lambda: 1, run, spawn, now=lambda: clock[0])
        for i in range(3000):
            batcher.add("quick", i)
            batcher.add("slow", i)
        while tasks or batcher.waiting:
            await asyncio.sleep(0)
        return sizes

    sizes = asyncio.run(main())
    assert sum(sizes["quick"]) == sum(sizes["slow"]) == 3000
    assert sizes["quick"][:4] == [FIRST_BATCH, 2 * FIRST_BATCH, 4 * FIRST_BATCH, MAX_BATCH]
    assert max(sizes["slow"][-20:]) <= 10 and min(sizes["slow"][-20:]) >= 2
