"""The object keeper: the actor that owns the values put by reference (``ctx.put``), a Ray
shell over :class:`~raypipe.objects.ObjectTable`.

A value must outlive the task that put it, and Ray frees an object when its owner (the
process that put it) exits: so the handler's process hands the value to this actor, which
puts it again and so owns it. The data goes from the object store to the keeper (a numpy
array without a copy) and back once; it never passes through the dispatcher, the state actor
or the journal, which see only the reference. A reader asks the keeper for the ObjectRef and
fetches the value from the object store itself.

Started on the first ``ctx.put`` of an app (an app that never puts pays for no process);
its sweep (see :mod:`raypipe.objects`) asks the dispatcher, the state actor and the streams
actor which references they still name, and drops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

import ray

from raypipe import constants
from raypipe.blobs import BlobStore
from raypipe.errors import RefGoneError
from raypipe.objects import ObjectTable
from raypipe.refs import Ref, describe
from raypipe.runtime import registry, shipping
from raypipe.runtime.private_dir import private_dir
from raypipe.runtime.spec import AppSpec

__all__ = ["SWEEP_SECONDS", "ObjectKeeper", "blob_store", "keeper"]

log = logging.getLogger("raypipe.objects")

#: Seconds between sweeps while the keeper holds anything.
SWEEP_SECONDS = 2.0
#: When a value found in the blob store was put: in an earlier life of the keeper, so no
#: request that put it is still running, and no grace is due.
_PUT_BEFORE = float("-inf")


@ray.remote(num_cpus=0)
class ObjectKeeper:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = registry.current(spec)
        #: ``None`` for a value only in the blob store (read on its first lookup).
        self.table: ObjectTable[ray.ObjectRef[Any] | None] = ObjectTable(
            self.spec.settings.ref_grace_seconds)
        self.blobs = blob_store(self.spec)
        self._sweeping: asyncio.Task[None] | None = None
        self._adopted = False

    def _started(self) -> None:
        """Once: the blobs a keeper before this one wrote are held (unread) until a sweep
        finds nothing naming them; and the sweeps run while anything is held."""
        if not self._adopted and self.blobs is not None:
            for ref_id in self.blobs.ids():
                if self.table.lookup(ref_id) is None:
                    self.table.hold(Ref(ref_id, "", None), None, None, _PUT_BEFORE)
        self._adopted = True
        if self.table.held and (self._sweeping is None or self._sweeping.done()):
            self._sweeping = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def put(self, boxed: list[ray.ObjectRef[Any]], ref: dict[str, Any],
                  holder: str | None, spec: AppSpec) -> None:
        """Own the value the caller put (``boxed``: its ObjectRef, boxed so that Ray hands
        it over unread), written to the blob store first where there is one. Read here with
        the caller's version of the app loaded (once per version): its classes unpickle."""
        shipping.load(spec)
        value = await boxed[0]
        if self.blobs is not None:
            await asyncio.to_thread(self.blobs.write, ref["id"], value)
        self.table.hold(Ref(ref["id"], ref["type"], ref["size"]), ray.put(value), holder,
                        time.monotonic())
        self._started()

    async def lookup(self, ref_id: str) -> list[ray.ObjectRef[Any]] | None:
        """The ObjectRef held for ``ref_id`` (boxed: the caller fetches the value), read
        from the blob store if only there; None if it is nowhere."""
        self._started()
        held = self.table.lookup(ref_id)
        if held is not None and held.value is not None:
            return [held.value]
        if self.blobs is None:
            return None
        shipping.load(registry.current(self.spec))
        try:
            value = await asyncio.to_thread(self.blobs.read, ref_id)
        except RefGoneError:
            return None
        obj = ray.put(value)
        if held is not None:
            held.value = obj
        else:
            type_name, size = describe(value)
            self.table.hold(Ref(ref_id, type_name, size), obj, None, _PUT_BEFORE)
        self._started()
        return [obj]

    async def stats(self) -> dict[str, Any]:
        return self.table.stats()

    async def sweep(self) -> list[str]:
        """One sweep now; the ids of the values that went."""
        candidates = self.table.candidates()
        if not candidates:
            return []
        ns = self.spec.namespace
        shards = range(self.spec.settings.shards)
        names = [constants.shard_actor(name, i)
                 for name in (constants.DISPATCHER_ACTOR, constants.STATE_ACTOR,
                              constants.STREAMS_ACTOR) for i in shards]
        asked = [ray.get_actor(name, namespace=ns).refs_in_use.remote(candidates)
                 for name in names]
        in_use: set[str] = set().union(*await asyncio.gather(*asked))
        gone = self.table.sweep(in_use, time.monotonic())
        if self.blobs is not None:
            for held in gone:
                await asyncio.to_thread(self.blobs.delete, held.ref.id)
        if gone:
            log.debug("freed %d values", len(gone))
        return [h.ref.id for h in gone]

    async def _sweep_loop(self) -> None:
        while self.table.held:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                # A part of the app restarting or unreachable (Redis down): free nothing
                # until every part answers.
                log.warning("a sweep of held values failed; trying again", exc_info=True)


def blob_store(spec: AppSpec) -> BlobStore | None:
    """The app's blob store: the ``blob_store`` setting, else with durable state a folder of
    this user's on the node, else none."""
    settings = spec.settings
    url = settings.blob_store
    if url is None and settings.state != "memory":
        # Named by the state too: the blobs belong with the items that name them, and two
        # apps of one name on other Redis databases must not sweep each other's.
        state = hashlib.sha256(settings.state.encode()).hexdigest()[:12]
        url = str(private_dir("blobs", f"{settings.name}-{state}"))
    if url is None:
        return None
    key = settings.blob_key.get_secret_value().encode() if settings.blob_key else None
    return BlobStore(url, key)


def keeper(spec: AppSpec) -> Any:
    """The app's keeper, started if it is not running yet."""
    with contextlib.suppress(ValueError):
        return ray.get_actor(constants.OBJECTS_ACTOR, namespace=spec.namespace)
    return ObjectKeeper.options(  # type: ignore[attr-defined]
        name=constants.OBJECTS_ACTOR, namespace=spec.namespace, lifetime="detached",
        get_if_exists=True).remote(spec)
