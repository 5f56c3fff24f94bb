from __future__ import annotations

from raypipe.effects import Effect, EffectLog


def test_a_repeat_returns_the_first_result() -> None:
    log = EffectLog()
    fx = Effect("d", "d|update|g|k|1")
    assert not log.seen(fx)
    log.record(fx, ({"n": 0}, {"n": 1}))
    assert log.seen(fx)
    assert log.result(fx) == ({"n": 0}, {"n": 1})


def test_effects_without_an_id_are_never_remembered() -> None:
    log = EffectLog()
    log.record(None, "x")
    assert not log.seen(None) and len(log) == 0


def test_records_go_with_their_owner_and_only_then() -> None:
    log = EffectLog()
    log.record(Effect("d1", "a"), 1)
    log.record(Effect("d1", "b"), 2)
    log.record(Effect("d2", "c"), 3)
    assert log.release(["d1", "unknown"]) == 2
    assert not log.seen("a") and not log.seen("b") and log.result("c") == 3
    assert log.owners == 1


def test_unowned_ids_are_kept_in_a_bounded_window() -> None:
    log = EffectLog(max_unowned=3)
    for key in "abcd":
        log.record_id(None, key)
    assert not log.seen("a") and all(log.seen(k) for k in "bcd")
    log.record_id("owner", "x")  # owned records are not part of the window
    log.record_id(None, "e")
    assert log.seen("x") and not log.seen("b")
