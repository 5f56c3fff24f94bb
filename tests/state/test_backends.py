"""Every state operation, against every backend (one suite; backends are interchangeable)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from raypipe.effects import Effect
from raypipe.errors import UpdateOpError
from raypipe.state.backend import StateBackend, make_backend
from raypipe.state.backends.memory import MemoryBackend
from tests.conftest import drop_app_keys


async def test_get_missing_is_none(backend: StateBackend) -> None:
    assert await backend.get("g", "nope") is None


async def test_set_returns_old_and_new(backend: StateBackend) -> None:
    assert await backend.set("g", "k", {"a": 1}) == (None, {"a": 1})
    assert await backend.set("g", "k", {"a": 2}) == ({"a": 1}, {"a": 2})
    assert await backend.get("g", "k") == {"a": 2}


async def test_values_of_every_json_type(backend: StateBackend) -> None:
    for i, v in enumerate(["s", 1, 1.5, True, [1, {"x": None}], {"n": {"m": [1]}}]):
        await backend.set("types", str(i), v)
        assert await backend.get("types", str(i)) == v


async def test_delete_returns_old_value(backend: StateBackend) -> None:
    await backend.set("g", "k", 1)
    assert await backend.delete("g", "k") == 1
    assert await backend.get("g", "k") is None
    assert await backend.delete("g", "k") is None


async def test_list_and_groups(backend: StateBackend) -> None:
    await backend.set("b", "2", {"v": 2})
    await backend.set("b", "1", {"v": 1})
    await backend.set("a", "x", 0)
    assert await backend.list("b") == [{"id": "1", "data": {"v": 1}}, {"id": "2", "data": {"v": 2}}]
    assert await backend.list("missing") == []
    assert await backend.list_groups() == ["a", "b"]
    await backend.delete("a", "x")
    assert await backend.list_groups() == ["b"]


async def test_clear_returns_removed_items(backend: StateBackend) -> None:
    await backend.set("g", "1", "a")
    await backend.set("g", "2", "b")
    await backend.set("other", "1", "c")
    assert await backend.clear("g") == [("1", "a"), ("2", "b")]
    assert await backend.list("g") == []
    assert await backend.get("other", "1") == "c"


async def test_update_every_op(backend: StateBackend) -> None:
    old, new = await backend.update("wf", "1", [
        {"type": "set", "path": "steps.3", "value": {"ok": True}},
        {"type": "increment", "path": "completed", "by": 2},
        {"type": "decrement", "path": "left", "by": 1},
        {"type": "merge", "path": "meta", "value": {"a": 1}},
        {"type": "append", "path": "log", "value": "x"},
    ])
    assert old is None
    assert new == {"steps": {"3": {"ok": True}}, "completed": 2, "left": -1,
                   "meta": {"a": 1}, "log": ["x"]}
    old2, new2 = await backend.update("wf", "1", [
        {"type": "remove", "path": "left"},
        {"type": "merge", "value": {"top": 1}},
        {"type": "append", "path": "log", "value": "y"},
        {"type": "increment", "path": "completed"},
    ])
    assert old2 == new
    assert new2 == {"steps": {"3": {"ok": True}}, "completed": 3, "meta": {"a": 1},
                    "log": ["x", "y"], "top": 1}
    assert await backend.get("wf", "1") == new2


async def test_failed_update_changes_nothing(backend: StateBackend) -> None:
    await backend.set("g", "k", {"n": "text"})
    with pytest.raises(UpdateOpError):
        await backend.update("g", "k", [{"type": "set", "path": "x", "value": 1},
                                        {"type": "increment", "path": "n"}])
    assert await backend.get("g", "k") == {"n": "text"}


async def test_set_does_not_alias_callers_value(backend: StateBackend) -> None:
    value = {"a": [1]}
    await backend.set("g", "k", value)
    _, new = await backend.update("g", "k", [{"type": "append", "path": "a", "value": 2}])
    assert value == {"a": [1]}
    assert new == {"a": [1, 2]}


async def test_concurrent_updates_of_one_item_never_lose_one(backend: StateBackend) -> None:
    await asyncio.gather(*(backend.update("hot", "k", [{"type": "increment", "path": "n"}])
                           for _ in range(200)))
    assert await backend.get("hot", "k") == {"n": 200}


async def test_concurrent_writes_each_get_their_own_result(backend: StateBackend) -> None:
    """Writes to one item in one burst (the Redis backend commits them together): each sees
    the value the one before it left, a failing one fails alone, a repeated effect is applied
    once and answers with its first result."""
    inc = [{"type": "increment", "path": "n"}]
    bad = [{"type": "append", "path": "n", "value": 1}]  # n is a number: append fails
    results = await asyncio.gather(
        backend.set("burst", "k", {"n": 0}),
        backend.update("burst", "k", inc, effect=Effect("d", "fx-1")),
        backend.update("burst", "k", bad),
        backend.update("burst", "k", inc, effect=Effect("d", "fx-1")),
        backend.update("burst", "k", inc),
        backend.set("burst", "other", 1),
        return_exceptions=True)
    assert results[0] == (None, {"n": 0})
    assert results[1] == results[3] == ({"n": 0}, {"n": 1})
    assert isinstance(results[2], UpdateOpError)
    assert results[4] == ({"n": 1}, {"n": 2})
    assert results[5] == (None, 1)
    assert await backend.get("burst", "k") == {"n": 2}
    # The effect is recorded: a later repeat, alone, still changes nothing.
    repeat = await backend.update("burst", "k", inc, effect=Effect("d", "fx-1"))
    assert repeat == ({"n": 0}, {"n": 1})
    assert await backend.get("burst", "k") == {"n": 2}


@pytest.fixture
async def redis_app(redis_url: str) -> AsyncIterator[tuple[StateBackend, str]]:
    """A Redis backend and its app name, to open a second backend on the same keys."""
    app = f"test-{uuid.uuid4().hex[:8]}"
    b = make_backend(redis_url, app)
    yield b, app
    await b.close()
    drop_app_keys(redis_url, app)


async def test_a_second_backend_on_the_same_redis_sees_the_items(
        redis_app: tuple[StateBackend, str], redis_url: str) -> None:
    """What a restarted state actor relies on."""
    backend, app = redis_app
    await backend.set("durable", "k", {"v": 1})
    again = make_backend(redis_url, app)
    assert await again.get("durable", "k") == {"v": 1}
    assert await again.list_groups() == ["durable"]
    await again.close()


async def test_a_second_backend_lists_and_clears_split_items_in_one_read(
        redis_app: tuple[StateBackend, str], redis_url: str) -> None:
    """Items kept as a head and field hashes, listed by a backend with no copy of them: the
    fields of all of them are read together (one round trip), and come out whole."""
    backend, app = redis_app
    items = {f"k{i}": {"steps": {str(j): {"v": j} for j in range(i + 1)}, "n": i}
             for i in range(5)}
    for key, value in items.items():
        await backend.set("split", key, value)
    await backend.set("split", "plain", 7)
    other = make_backend(redis_url, app)
    try:
        listed = await other.list("split")
        assert listed == [{"id": k, "data": v} for k, v in sorted({**items, "plain": 7}.items())]
        assert await other.clear("split") is not None
        assert await other.list("split") == [] and await backend.get("split", "k3") is None
    finally:
        await other.close()


async def test_a_repeated_effect_is_applied_once(backend: StateBackend) -> None:
    ops = [{"type": "increment", "path": "n"}]
    first = await backend.update("fx", "k", ops, effect=Effect("d", "delivery-1|update|1"))
    again = await backend.update("fx", "k", ops, effect=Effect("d", "delivery-1|update|1"))
    other = await backend.update("fx", "k", ops, effect=Effect("d", "delivery-2|update|1"))
    assert first == again == (None, {"n": 1})
    assert other == ({"n": 1}, {"n": 2})
    assert await backend.set("fx", "s", 1, effect=Effect("d", "e-set")) == (None, 1)
    assert await backend.set("fx", "s", 2, effect=Effect("d", "e-set")) == (None, 1)
    assert await backend.get("fx", "s") == 1
    assert await backend.delete("fx", "s", effect=Effect("d", "e-del")) == 1
    await backend.set("fx", "s", 3)
    # The repeat: nothing deleted.
    assert await backend.delete("fx", "s", effect=Effect("d", "e-del")) == 1
    assert await backend.get("fx", "s") == 3


async def test_effects_survive_a_new_backend_on_the_same_redis(
        redis_app: tuple[StateBackend, str], redis_url: str) -> None:
    """A restarted state actor must still recognise the effects its predecessor applied, and
    drop their records once their delivery is released (a release names every settled
    delivery, also those that wrote nothing here)."""
    backend, app = redis_app
    ops = [{"type": "increment", "path": "n"}]
    await backend.update("fx", "k", ops, effect=Effect("d", "d|1"))
    restarted = make_backend(redis_url, app)
    try:
        assert await restarted.update("fx", "k", ops, effect=Effect("d", "d|1")) == (
            None, {"n": 1})
        assert await restarted.get("fx", "k") == {"n": 1}
        await restarted.release(["d", "never-wrote-here"])
        assert await restarted.applied(Effect("d", "d|1")) is None
        assert await backend.applied(Effect("d", "d|1")) is None
    finally:
        await restarted.close()


async def test_effect_records_last_until_their_delivery_is_released(
        backend: StateBackend) -> None:
    """No clock drops a record: it answers repeats until its owner settles and is released."""
    ops = [{"type": "increment", "path": "n"}]
    await backend.update("life", "k", ops, effect=Effect("d1", "d1-a"))
    await backend.update("life", "k", ops, effect=Effect("d2", "d2-a"))
    await backend.clear("other", effect=Effect("d1", "d1-b"))
    assert await backend.applied(Effect("d1", "d1-a")) == (None, {"n": 1})
    await backend.release(["d1"])
    assert await backend.applied(Effect("d1", "d1-a")) is None
    assert await backend.applied(Effect("d2", "d2-a")) == ({"n": 1}, {"n": 2})


async def test_redis_effect_records_have_no_ttl_and_a_sweep_drops_those_no_journal_holds(
        redis_app: tuple[StateBackend, str], redis_url: str) -> None:
    """A release lost with a dispatcher's life leaves its deliveries' records: the sweep the
    next life asks for drops those of deliveries neither pending nor dead in any shard's
    journal, and keeps the others'."""
    import redis.asyncio as aioredis

    from raypipe import constants
    from raypipe.engine.delivery import Delivery
    from raypipe.engine.redis_journal import RedisJournal
    from raypipe.trigger_kind import TriggerKind

    backend, app = redis_app
    ops = [{"type": "increment", "path": "n"}]
    for owner in ("d1", "d2"):
        await backend.update("life", "k", ops, effect=Effect(owner, f"{owner}-e"))
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    ekey = constants.effect_key(app, "d1-e")
    assert await r.ttl(ekey) == -1  # kept, however long its delivery waits
    journal = RedisJournal(redis_url, app, shard=1, shards=2)  # d2 still runs, in shard 1
    await journal.start()
    await journal.accepted([Delivery("d2", "s", TriggerKind.QUEUE, {}, "t")], [])
    assert await backend.sweep_records() == 1
    assert not await r.exists(ekey, constants.owned_effects_key(app, "d1"))
    assert await r.smembers(constants.effect_owners_key(app)) == {"d2"}
    assert await backend.applied(Effect("d1", "d1-e")) is None
    assert await backend.applied(Effect("d2", "d2-e")) == ({"n": 1}, {"n": 2})
    await journal.settled(["d2"])
    assert await backend.sweep_records() == 1
    assert await backend.applied(Effect("d2", "d2-e")) is None
    await journal.close()
    await r.aclose()


async def test_a_growing_redis_item_is_written_by_what_changes(
        redis_app: tuple[StateBackend, str], redis_url: str) -> None:
    """The seed's shape: one item gaining an entry per step. Each write sends the head and one
    entry; its effect record keeps the paths it wrote; another backend reads it whole."""
    import redis.asyncio as aioredis

    from raypipe import constants

    backend, app = redis_app
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    n = 600
    await backend.set("wf", "w", {"total": n, "done": 0, "steps": {}})
    for i in range(n):
        await backend.update("wf", "w", [
            {"type": "increment", "path": "done"},
            {"type": "set", "path": f"steps.{i}", "value": {"i": i, "pad": "x" * 40}}],
            effect=Effect(f"d{i}", f"e{i}"))
    head = await r.hget(constants.state_group_key(app, "wf"), "w")
    assert len(head) < 200, head  # the steps are not in it
    entries = await r.hlen(constants.state_field_key(app, "wf", "w", "steps"))
    assert entries == n
    record = await r.get(constants.effect_key(app, f"e{n - 1}"))
    assert len(record) < 400, len(record)  # the paths it wrote, not the item
    old, new = await backend.applied(Effect(f"d{n - 1}", f"e{n - 1}"))  # type: ignore[misc]
    assert new["done"] == n and old["done"] == n - 1 and str(n - 1) not in old["steps"]
    other = make_backend(redis_url, app)  # no copy kept: reads the item whole
    item = await other.get("wf", "w")
    assert item["done"] == n and len(item["steps"]) == n and item["steps"]["7"]["i"] == 7
    # Another writer's change is seen by the first backend (the version moved).
    await other.update("wf", "w", [{"type": "set", "path": "steps.0.i", "value": -1}])
    assert (await backend.get("wf", "w"))["steps"]["0"]["i"] == -1
    await backend.update("wf", "w", [{"type": "remove", "path": "steps"}])
    assert not await r.exists(constants.state_field_key(app, "wf", "w", "steps"))
    assert await other.get("wf", "w") == {"total": n, "done": n}
    await backend.delete("wf", "w")
    assert await other.get("wf", "w") is None
    await other.close()
    await r.aclose()


# --- ids: any text, exactly; no two items share a key ------------------------------------------
async def test_ids_that_spell_another_items_key_stay_apart(
        backend: StateBackend, redis_url: str) -> None:
    """Layout 1 joined group, item and field with U+001F: these two items named one field hash,
    so after a restart the victim read the attacker's values, and deleting the attacker's
    item wiped the victim's field."""
    victim = ("victim\x1falice", "profile")
    attacker = ("victim", "alice\x1fprofile")
    await backend.set(*victim, {"email": {"addr": "alice@example.com"}})
    await backend.set(*attacker, {"email": {"addr": "evil@example.com"}})
    # A new backend on the same store (a state actor restart) reads both from storage.
    fresh = _same_store(backend, redis_url)
    assert await fresh.get(*victim) == {"email": {"addr": "alice@example.com"}}
    assert await fresh.get(*attacker) == {"email": {"addr": "evil@example.com"}}
    await fresh.delete(*attacker)
    again = _same_store(backend, redis_url)
    assert await again.get(*victim) == {"email": {"addr": "alice@example.com"}}
    assert await again.get(*attacker) is None


async def test_ids_with_control_characters_round_trip(
        backend: StateBackend, redis_url: str) -> None:
    ids = ["a\x1fb", "\x00", "tab\there", "new\nline", "ünï:cödé|x", "\x7f\x1e\x1d"]
    for i in ids:
        await backend.set(i, i, {"f": {i: i}})
    fresh = _same_store(backend, redis_url)
    for i in ids:
        assert await fresh.get(i, i) == {"f": {i: i}}
        assert await fresh.list(i) == [{"id": i, "data": {"f": {i: i}}}]
    assert set(ids) <= set(await fresh.list_groups())


def _same_store(backend: StateBackend, redis_url: str) -> StateBackend:
    if isinstance(backend, MemoryBackend):
        return backend  # memory is the one store there is
    from raypipe.state.backends.redis import RedisBackend

    assert isinstance(backend, RedisBackend)
    return RedisBackend(backend.url, backend.app)
