"""Large items updated in place (raypipe.state.in_place), on every backend: what a write
answers, what a reader holds, what triggers see, repeats and failures."""

from __future__ import annotations

import asyncio
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from raypipe.change_triggers import ChangeTriggers
from raypipe.effects import Effect
from raypipe.engine.delivery import Delivery
from raypipe.errors import UpdateOpError
from raypipe.loader import load_app
from raypipe.runtime_protocols import Origin
from raypipe.state.backend import StateBackend
from raypipe.state.backends.memory import MemoryBackend
from raypipe.state.change import LARGE_ITEM, StateChange
from raypipe.state.service import StateService
from raypipe.trigger_kind import ChangeSource

SEED = Path(__file__).resolve().parents[2] / "examples" / "parallel-workflow"
N = LARGE_ITEM + 44  # past the size at which an item is updated in place


def workflow(steps: int, total: int = N) -> dict[str, Any]:
    return {"totalSteps": total, "completedSteps": steps,
            "steps": {str(i): {"value": i} for i in range(steps)}}


def step_done(i: int) -> list[dict[str, Any]]:
    """The seed's write of one step (examples/parallel-workflow)."""
    return [{"type": "increment", "path": "completedSteps", "by": 1},
            {"type": "set", "path": f"steps.{i}", "value": {"value": i}}]


async def test_update_answers_the_values_as_written(backend: StateBackend) -> None:
    await backend.set("wf", "1", workflow(N - 10))
    old, new = await backend.update("wf", "1", step_done(N - 10))
    assert old == workflow(N - 10)
    assert new == workflow(N - 9)
    await backend.update("wf", "1", step_done(N - 9))
    # The item moved on; the first write's answer still reads as that write left it.
    assert await backend.get("wf", "1") == workflow(N - 8)


async def test_a_value_read_never_changes_after(backend: StateBackend) -> None:
    await backend.set("wf", "1", workflow(N - 10))
    await backend.update("wf", "1", step_done(N - 10))
    read = await backend.get("wf", "1")
    listed = (await backend.list("wf"))[0]["data"]
    for i in range(N - 9, N - 5):
        await backend.update("wf", "1", step_done(i))
    assert read == listed == workflow(N - 9)
    assert await backend.get("wf", "1") == workflow(N - 5)


async def test_a_repeated_update_changes_nothing_and_answers_as_first(
        backend: StateBackend) -> None:
    await backend.set("wf", "1", workflow(N - 10))
    effect = Effect("delivery-1", "delivery-1:0")
    first = await backend.update("wf", "1", step_done(N - 10), effect)
    await backend.update("wf", "1", step_done(N - 9))
    again = await backend.update("wf", "1", step_done(N - 10), effect)
    assert tuple(again) == tuple(first)
    assert (await backend.get("wf", "1"))["completedSteps"] == N - 8
    assert await backend.applied(effect) == tuple(first)


async def test_a_failing_update_leaves_the_item_as_it_was(backend: StateBackend) -> None:
    await backend.set("wf", "1", workflow(N - 10))
    await backend.update("wf", "1", step_done(N - 10))
    with pytest.raises(UpdateOpError, match="update op #2"):
        await backend.update("wf", "1", [*step_done(N - 9),
                                          {"type": "increment", "path": "steps"}])
    assert await backend.get("wf", "1") == workflow(N - 9)
    _, new = await backend.update("wf", "1", step_done(N - 9))
    assert new == workflow(N - 8)


async def test_setting_the_root_to_null_removes_the_item(backend: StateBackend) -> None:
    await backend.set("wf", "1", workflow(N - 10))
    await backend.update("wf", "1", [{"type": "set", "path": "", "value": None}])
    assert await backend.get("wf", "1") is None


async def test_the_memory_backend_does_not_copy_an_item_it_alone_holds() -> None:
    # What makes a step of an N-step workflow cost the same at any N: no copy of `steps`.
    backend = MemoryBackend()
    await backend.set("wf", "1", workflow(N - 10))
    await backend.update("wf", "1", step_done(N - 10))  # the first one copies the caller's
    held = backend._groups["wf"]["1"]["steps"]
    for i in range(N - 9, N):
        await backend.update("wf", "1", step_done(i))
    assert backend._groups["wf"]["1"]["steps"] is held
    await backend.get("wf", "1")  # handed out: the next update copies
    await backend.update("wf", "1", [{"type": "increment", "path": "completedSteps"}])
    assert backend._groups["wf"]["1"]["steps"] is not held


class Collect:
    """The engine's end of state triggers: the deliveries they hand over."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> None:
        await asyncio.sleep(0)  # the engine answers later: other writes run meanwhile
        self.deliveries.append(delivery)


def no_context(*_: Any) -> Any:
    raise AssertionError("the seed's condition takes no context")


@pytest.mark.parametrize("defer_large", [True, False], ids=["actor", "local"])
async def test_the_seeds_fan_in_completes_once(backend: StateBackend,
                                                defer_large: bool) -> None:
    # Many concurrent writes to one large item (the Redis backend commits them in groups):
    # each change's condition sees its own values, so the completion fires exactly once,
    # on the last write, with the values before and after it.
    collect = Collect()
    service = StateService(backend, ChangeTriggers(load_app(SEED), ChangeSource.STATE,
                                                   invoke=collect, context=no_context),
                           defer_large=defer_large)
    await service.set("workflows", "w", workflow(0), Origin("t"))
    answers = await asyncio.gather(*(
        service.update("workflows", "w", step_done(i),
                       Origin("t", effect=Effect(f"d{i}", f"d{i}:0"))) for i in range(N)))
    fired = [d for d in collect.deliveries if d.step == "workflow-completion"]
    assert len(fired) == 1
    change = fired[0].payload
    assert change["new_value"] == {**workflow(N), "steps": change["new_value"]["steps"]}
    assert len(change["new_value"]["steps"]) == N
    assert change["old_value"]["completedSteps"] == N - 1
    assert len(change["old_value"]["steps"]) == N - 1
    assert change["event_type"] == "updated"
    if not defer_large:  # in one process an answer is made when read
        late = [a for a in answers if isinstance(a, StateChange)]
        assert late
        for answer in late:
            old, new = answer
            assert new["completedSteps"] == old["completedSteps"] + 1


async def test_an_async_condition_sees_the_change_as_it_was(backend: StateBackend) -> None:
    seen: list[tuple[int, int]] = []

    async def condition(change: Any) -> bool:
        await asyncio.sleep(0.01)  # later writes land meanwhile
        if change.old_value is None:  # the item's creation
            return False
        seen.append((change.old_value["completedSteps"], change.new_value["completedSteps"]))
        return False

    app = load_app(SEED)
    triggers = ChangeTriggers(app, ChangeSource.STATE, invoke=Collect(), context=no_context)
    step, tr, kind = triggers.watchers[0]
    triggers.watchers = [(step, type(tr)(condition=condition), kind)]
    service = StateService(backend, triggers)
    await service.set("workflows", "w", workflow(N - 10), Origin("t"))
    await asyncio.gather(*(service.update("workflows", "w", step_done(i), Origin("t"))
                           for i in range(N - 10, N)))
    assert sorted(seen) == [(i, i + 1) for i in range(N - 10, N)]


async def test_a_write_outside_a_delivery_answers_copies(backend: StateBackend) -> None:
    service = StateService(backend, ChangeTriggers(load_app(SEED), ChangeSource.STATE,
                                                   invoke=Collect(), context=no_context))
    await service.set("workflows", "w", workflow(N - 10), Origin("t"))
    old, new = await service.update("workflows", "w", step_done(N - 10), Origin("t"))
    kept = deepcopy(new)
    await service.update("workflows", "w", step_done(N - 9), Origin("t"))
    assert new == kept == workflow(N - 9)
    assert old == workflow(N - 10)
