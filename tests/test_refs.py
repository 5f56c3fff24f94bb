"""Values by reference, in-process (raypipe.testing): ``ctx.put`` / ``ctx.get``, the JSON
form of a reference, and when a held value goes. The same app runs on Ray in
tests/runtime/test_refs.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raypipe import ConfigError, Ref, RefGoneError, UnsafePathError
from raypipe.blobs import BlobStore
from raypipe.objects import MISSES_TO_FREE, ObjectTable, new_ref
from raypipe.refs import as_ref, describe, ref_ids_in
from raypipe.testing import TestApp
from tests.conftest import APPS

APP = APPS / "refs"


def test_a_reference_is_plain_json_and_read_back_as_one() -> None:
    ref = Ref("a" * 32, "numpy.ndarray", 800)
    back = json.loads(json.dumps({"x": [ref]}))
    assert as_ref(back["x"][0]) == ref and as_ref(back["x"][0]).size == 800
    assert ref_ids_in({"deep": [{"k": back}], "other": {"$raypipe": "ref"}}) == {"a" * 32}
    assert ref_ids_in(back, among={"b" * 32}) == set()
    assert as_ref({"$raypipe": "ref", "id": "../etc"}) is None  # only ids raypipe makes
    assert describe(b"abc") == ("bytes", 3)
    assert describe({"a": 1}) == ("dict", None)


def test_a_value_goes_after_two_sweeps_that_found_it_unnamed() -> None:
    table: ObjectTable[str] = ObjectTable(grace=10.0)
    held, free, outside = (Ref(c * 32, "str", None) for c in "abc")
    table.hold(held, "v1", holder="d1", now=0.0)
    table.hold(free, "v2", holder="d2", now=0.0)
    table.hold(outside, "v3", holder=None, now=0.0)  # put outside a delivery: grace
    for sweep in range(MISSES_TO_FREE - 1):
        assert table.sweep({held.id}, now=float(sweep)) == []
    assert [h.ref for h in table.sweep({held.id}, now=5.0)] == [free]
    assert table.sweep({held.id}, now=9.0) == []  # within its grace
    table.sweep({held.id}, now=11.0)
    assert [h.ref for h in table.sweep({held.id}, now=12.0)] == [outside]
    assert set(table.held) == {held.id}


def test_an_array_crosses_three_steps_by_reference_and_goes_after_its_workflow() -> None:
    with TestApp(APP) as app:
        for i in range(3):
            r = app.client.post("/refs", json={"id": f"w{i}", "seed": i, "mb": 2,
                                               "keep": i == 0})
            assert r.status_code == 202
        app.run_until_idle()
        for i in range(3):
            rec = app.state.get("refs", f"w{i}")
            assert rec["sha_seen"] == rec["sha_sent"]
            assert (rec["type"], rec["size"]) == ("numpy.ndarray", 2 << 20)
        # The kept one is named by its state item; the others went with their workflows.
        kept = as_ref(app.state.get("refs", "w0")["ref"])
        assert app.objects.stats() == {"objects": 1, "bytes": 2 << 20}
        assert app.objects.get(kept).nbytes == 2 << 20
        # The message the journal held was the reference, not the data.
        assert len(json.dumps(app.state.get("refs", "w0"))) < 1000
        assert app.client.delete("/refs/w0").status_code == 204
        app.run_until_idle()
        assert app.objects.stats() == {"objects": 0, "bytes": 0}
        with pytest.raises(RefGoneError) as err:
            app.objects.get(kept)
        assert err.value.ref_id == kept.id


def test_a_put_outside_a_delivery_is_held_through_its_grace() -> None:
    with TestApp(APP) as app:
        r = app.client.post("/refs/direct", json={"id": "d", "text": "hello"})
        ref = as_ref(r.json()["ref"])
        assert ref is not None and (ref.type, ref.size) == ("bytes", 5)
        app.run_until_idle()
        assert app.state.get("refs", "d")["sha_seen"] == (
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        assert app.objects.stats()["objects"] == 1  # the request could still hold it
        app.advance(app.app.settings.ref_grace_seconds + 1)
        app.run_until_idle()
        assert app.objects.stats()["objects"] == 0


def test_the_blob_store_reads_back_only_what_it_can_verify(tmp_path: Path) -> None:
    key = b"k" * 32
    store = BlobStore(str(tmp_path / "blobs"), key)
    arr = np.arange(1000, dtype=np.float64)
    store.write("a" * 32, arr)
    assert np.array_equal(store.read("a" * 32), arr)
    assert store.ids() == ["a" * 32]
    assert (tmp_path / "blobs").stat().st_mode & 0o777 == 0o700
    with pytest.raises(RefGoneError, match="verification"):
        BlobStore(str(tmp_path / "blobs"), b"other").read("a" * 32)
    # A blob renamed to another id fails too: the id is signed with the bytes.
    (tmp_path / "blobs" / f"{'a' * 32}.pkl").rename(tmp_path / "blobs" / f"{'b' * 32}.pkl")
    with pytest.raises(RefGoneError, match="verification"):
        store.read("b" * 32)
    store.delete("b" * 32)
    assert store.ids() == []
    with pytest.raises(RefGoneError, match="not in the blob store"):
        store.read("a" * 32)


def test_a_blob_store_not_ours_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="blob_key"):
        BlobStore("memory://blobs", None)  # any store but a local folder needs a key
    BlobStore("memory://blobs", b"key").write("c" * 32, b"x")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(UnsafePathError, match="written by other users"):
        BlobStore(str(shared), None)



def test_a_sweep_reads_only_the_state_groups_that_were_given_a_reference() -> None:
    """The keeper sweeps every 2 s while it holds anything: reading every item of the app
    each time grew with the app's state (10,000 result items a job in image-pipeline)."""
    from raypipe.change_triggers import ChangeTriggers
    from raypipe.loader import load_app
    from raypipe.runtime_protocols import Origin
    from raypipe.state.backends.memory import MemoryBackend
    from raypipe.state.service import StateService
    from raypipe.trigger_kind import ChangeSource

    class Listing(MemoryBackend):
        def __init__(self) -> None:
            super().__init__()
            self.listed: list[str] = []

        async def list(self, group: str) -> Any:
            self.listed.append(group)
            return await super().list(group)

    async def never(*_: Any) -> Any:
        raise AssertionError("the refs app has no state trigger")

    backend = Listing()
    triggers = ChangeTriggers(load_app(APP), ChangeSource.STATE, invoke=never, context=never)
    before, given = new_ref(b"before"), new_ref(b"given")
    origin = Origin("t")

    async def run() -> list[Any]:
        await StateService(backend, triggers).set("old", "a", {"data": before}, origin)
        service = StateService(backend, triggers)  # a new service: as after a restart
        for i in range(50):
            await service.set("plain", str(i), {"n": i}, origin)
        first = await service.refs_in_use({before.id: None, given.id: None})
        listed_first, backend.listed = sorted(set(backend.listed)), []
        await service.update("new", "x", [{"type": "set", "path": "r", "value": given}],
                             origin)
        second = await service.refs_in_use({before.id: None, given.id: None})
        return [first, listed_first, second, sorted(backend.listed)]

    first, listed_first, second, listed = asyncio.run(run())
    assert first == {before.id}
    assert listed_first == ["old", "plain"]  # the first sweep reads every group, once
    assert second == {before.id, given.id}
    assert listed == ["new", "old"]  # then only those a reference was written into
