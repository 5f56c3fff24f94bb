"""The state service, Ray-free: the app's state backend, where every write is atomic and each
committed change fires the state triggers before the write answers. The state actor is a Ray
shell over it; :mod:`raypipe.testing` runs it in-process."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from raypipe import wire
from raypipe.change_triggers import ChangeTriggers, Fired
from raypipe.effects import Effect
from raypipe.engine.loopbatch import run_calls
from raypipe.models import EventType, StateTriggerInput
from raypipe.refs import names_a_ref, ref_ids_in
from raypipe.runtime_protocols import Origin
from raypipe.shared_types import Groups, Items, Ops
from raypipe.state.backend import StateBackend
from raypipe.state.change import DEFERRED, Deferred, StateChange, is_large
from raypipe.state.ids import check_ids
from raypipe.state.in_place import Before, answer, snapshot

__all__ = ["Answer", "StateService"]

#: A write's answer: ``(old, new)``, :data:`DEFERRED` (see :meth:`StateService.set`), or, from
#: a local service, a change whose values are made when read.
Answer = tuple[Any, Any] | Deferred | StateChange

#: The calls :meth:`StateService.batch` takes.
_BATCHED = frozenset({"get", "set", "update", "delete"})


class StateService:
    def __init__(self, backend: StateBackend, triggers: ChangeTriggers, *,
                 defer_large: bool = True) -> None:
        """``defer_large``: a delivery's write to a large item answers :data:`DEFERRED`
        (its caller fetches the values only if it reads them: across processes, a write to
        one field of a big item then costs its path, not the item's size)."""
        self.backend = backend
        self.triggers = triggers
        self._defer_large = defer_large
        #: The groups a write put a reference into (the value or ops it wrote named one),
        #: and, after the first sweep, those that held one before this service started: a
        #: sweep reads these groups, not every item of the app.
        self._ref_groups: builtins.set[str] = builtins.set()
        self._scanned = False

    async def ping(self) -> bool:
        """Whether the backend answers (the health route asks)."""
        await self.backend.list_groups()
        return True

    async def release(self, owners: list[str]) -> None:
        """These deliveries settled: their effect records may go."""
        await self.backend.release(owners)

    async def sweep_records(self) -> int:
        """Drop the effect records of deliveries no journal holds (see
        :meth:`~raypipe.state.backend.StateBackend.sweep_records`)."""
        return await self.backend.sweep_records()

    async def batch(self, calls: list[wire.Wire]) -> list[wire.Wire]:
        """Several calls from one process in one actor call (see
        :func:`~raypipe.engine.loopbatch.run_calls`); the Redis backend commits a batch's
        writes to one item together instead of one by one."""
        return wire.outcomes_out(await run_calls(self, wire.calls_in(calls), _BATCHED))

    # --- the StateStore protocol ------------------------------------------------------------
    # Ids are checked here, where every caller's call lands (handlers, the admin API, the
    # CLI); ctx.state checks them first too, to fail in the handler without a round trip.
    async def get(self, group: str, key: str) -> Any:
        check_ids(group=group, item=key)
        return await self.backend.get(group, key)

    # A write whose effect was already applied (a retried delivery repeating it) changes
    # nothing: the backend returns the first result. Triggers see it again, but the trigger
    # delivery is named after the effect, so the engine does not run it twice.
    async def set(self, group: str, key: str, value: Any, origin: Origin) -> Answer:
        check_ids(group=group, item=key)
        if names_a_ref(value):
            self._ref_groups.add(group)
        seen = _Seen(self, group, key, origin)
        await self.backend.set(group, key, value, origin.effect, seen)
        return await seen.settle()

    async def update(self, group: str, key: str, ops: Ops, origin: Origin) -> Answer:
        check_ids(group=group, item=key)
        if _ops_name_a_ref(ops):
            self._ref_groups.add(group)
        seen = _Seen(self, group, key, origin)
        await self.backend.update(group, key, ops, origin.effect, seen)
        return await seen.settle()

    async def applied(self, effect: Effect) -> tuple[Any, Any]:
        """The values a delivery's write left (see :class:`~raypipe.state.change.Deferred`)."""
        first = await self.backend.applied(effect)
        if first is None:
            raise LookupError("this write's values are gone: its delivery has settled")
        return first

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        check_ids(group=group, item=key)
        seen = _Seen(self, group, key, origin)
        old = await self.backend.delete(group, key, origin.effect, seen)
        await seen.settle()
        return old

    async def list(self, group: str) -> Items:
        check_ids(group=group)
        return await self.backend.list(group)

    async def list_groups(self) -> Groups:
        return await self.backend.list_groups()

    async def refs_in_use(self, candidates: Mapping[str, str | None]) -> builtins.set[str]:
        """Of these references, those a state item names (a sweep of
        :mod:`raypipe.objects` asks). The first sweep reads every group once (items written
        before this service started); later ones only the groups a write put a reference
        into (a group stays on the list once on it: a write racing a sweep must not be
        missed)."""
        if not self._scanned:
            for group in await self.backend.list_groups():
                if names_a_ref(await self.backend.list(group)):
                    self._ref_groups.add(group)
            self._scanned = True
        used: builtins.set[str] = builtins.set()
        for group in sorted(self._ref_groups):
            used |= ref_ids_in(await self.backend.list(group), candidates)
        return used

    async def clear(self, group: str, origin: Origin) -> None:
        check_ids(group=group)
        for key, old in await self.backend.clear(group, origin.effect):
            await self.triggers.fire(StateTriggerInput(group, key, old, None, "deleted"), origin)

    def _reply(self, old: Any, new: Any, origin: Origin) -> Answer:
        """What a write answers, made as its values are computed."""
        if isinstance(old, Before):
            if not self._defer_large:  # in one process: made when read, if ever
                record = old.record
                return StateChange(load=lambda: answer(record, new))
            if origin.effect is not None:
                return DEFERRED
            # A write outside any delivery (an http handler's) has no record to fetch from.
            return snapshot(old.value()), snapshot(new)
        if self._defer_large and origin.effect is not None and is_large(old, new):
            return DEFERRED
        return old, new


def _ops_name_a_ref(ops: Ops) -> bool:
    """Whether update ops put a reference into their item: only an op's ``value`` holds
    arbitrary JSON (a path is text, ``by`` a number), and most ops (increments) have none."""
    for op in ops:
        if not isinstance(op, dict):
            return names_a_ref(ops)  # not ops at all: the update refuses them anyway
        if "value" in op and names_a_ref(op["value"]):
            return True
    return False


class _Seen:
    """Told a write's values the moment its backend computed them (an
    :data:`~raypipe.state.backend.Observe`): evaluates the state triggers of the change and
    makes the write's answer there and then, as an item updated in place
    (:mod:`raypipe.state.in_place`) changes with its next write; :meth:`settle` hands the
    triggers' deliveries on once the write has committed."""

    __slots__ = ("_answer", "_fired", "_group", "_key", "_origin", "_service")

    def __init__(self, service: StateService, group: str, key: str, origin: Origin) -> None:
        self._service, self._group, self._key, self._origin = service, group, key, origin
        self._fired: Fired = []
        self._answer: Answer = (None, None)

    def __call__(self, old: Any, new: Any) -> None:
        # Called again if the backend computes the write again (a Redis transaction that
        # lost a race): the last call is the write that committed.
        if isinstance(old, Before):
            changed, existed = old.changed, old.existed
        else:
            # A write that changes nothing is not a change: no trigger fires for it.
            changed, existed = old != new, old is not None
        self._fired = []
        if changed:
            event: EventType = ("created" if not existed else "deleted" if new is None
                                else "updated")
            change = (_LiveChange(self._group, self._key, old, new, event)
                      if isinstance(old, Before)
                      else StateTriggerInput(self._group, self._key, old, new, event))
            self._fired = self._service.triggers.evaluate(change, self._origin)
        self._answer = self._service._reply(old, new, self._origin)

    async def settle(self) -> Answer:
        await self._service.triggers.dispatch(self._fired, self._origin)
        return self._answer


class _LiveChange(StateTriggerInput):
    """The change of an item updated in place: its old value is made when first read, from
    the item as it then is (so read before the item's next write, as trigger conditions
    are)."""

    def __init__(self, group_id: str, item_id: str, before: Before, new_value: Any,
                 event_type: EventType) -> None:
        # Not the dataclass's __init__: ``old_value`` stays unset until read.
        self.group_id, self.item_id = group_id, item_id
        self.new_value, self.event_type = new_value, event_type
        self._before = before

    def __getattr__(self, name: str) -> Any:
        if name != "old_value":
            raise AttributeError(name)
        self.old_value = self._before.value()
        return self.old_value

    def __deepcopy__(self, memo: dict[int, Any]) -> StateTriggerInput:
        return StateTriggerInput(self.group_id, self.item_id, snapshot(self.old_value),
                                 snapshot(self.new_value), self.event_type)
