"""Batching, Ray-free parts: how a fan-out is split into batch tasks."""

from __future__ import annotations

from raypipe.runtime.dispatcher import MAX_BATCH, batch_chunks


def test_a_fan_out_is_spread_over_the_slots_in_batches_of_at_most_max() -> None:
    for n, slots in ((1, 8), (5, 8), (8, 8), (100, 8), (1000, 8), (10_000, 8), (33, 1)):
        chunks = batch_chunks(list(range(n)), slots)
        assert [x for c in chunks for x in c] == list(range(n))  # all, in order
        assert max(map(len, chunks)) <= MAX_BATCH
        assert len(chunks) >= min(n, slots)
        assert max(map(len, chunks)) - min(map(len, chunks)) <= 1  # even
    assert batch_chunks([], 8) == []
    assert [len(c) for c in batch_chunks(list(range(5)), 8)] == [1] * 5
