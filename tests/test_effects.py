from __future__ import annotations

from raypipe.effects import EffectLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_repeat_returns_the_first_result() -> None:
    log = EffectLog()
    assert not log.seen("d|update|g|k|1")
    log.record("d|update|g|k|1", ({"n": 0}, {"n": 1}))
    assert log.seen("d|update|g|k|1")
    assert log.result("d|update|g|k|1") == ({"n": 0}, {"n": 1})


def test_effects_without_an_id_are_never_remembered() -> None:
    log = EffectLog()
    log.record(None, "x")
    assert not log.seen(None) and len(log) == 0


def test_entries_expire_after_the_ttl_and_the_size_is_bounded() -> None:
    clock = Clock()
    log = EffectLog(ttl=10, max_entries=3, clock=clock)
    log.record("a")
    clock.now = 5
    log.record("b")
    clock.now = 11
    log.record("c")  # "a" is now 11 s old
    assert not log.seen("a") and log.seen("b") and log.seen("c")
    log.record("d")
    log.record("e")  # four within the TTL, but at most three kept: the oldest goes
    assert not log.seen("b") and [log.seen(x) for x in "cde"] == [True] * 3
