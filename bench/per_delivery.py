"""Each process's own Python per delivery of a fan-out, with Ray out of the way: the part of
the pipeline's CPU that is raypipe's code rather than Ray's machinery.

The stages of bench/apps/fanout, each run in this process on what its process would be
handed, the actor on the other side answering at once:

- ``replica``: the http step's 10,000 ``ctx.enqueue`` s in one ``gather`` (validated, made
  messages, packed for the dispatcher), against the same ``gather`` of empty coroutines;
- ``engine``: the dispatcher's engine taking messages, starting their first attempts through
  an executor that succeeds at once, and settling them (memory journal);
- ``worker``: a task worker's batch of 256 deliveries (input validated, context, handler,
  its state update packed for the state actor);
- ``state``: the state service's batched updates of one item with their effect records and
  the completion's state trigger evaluated (memory, and Redis if ``--redis``).

Python's cyclic GC is off while timing (the processes on Ray collect rarely:
:mod:`raypipe.runtime.gc_tuning`). CPU time of this process, median of ``--repeat``.

    python bench/per_delivery.py [--redis redis://127.0.0.1:6379/15] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _local import REDIS_URL, write_json

from raypipe import wire
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.context import FlowContext
from raypipe.effects import Effect
from raypipe.engine import DeliveryEngine
from raypipe.engine.delivery import Delivery
from raypipe.engine.journal import MemoryJournal
from raypipe.execution import run_one
from raypipe.loader import load_app
from raypipe.messages import Message
from raypipe.runtime.bridge import ActorBus, ActorStateStore
from raypipe.runtime_protocols import Origin
from raypipe.state.backend import make_backend
from raypipe.state.service import StateService
from raypipe.steps import Step
from raypipe.trigger_kind import ChangeSource, TriggerKind
from raypipe.triggers import QueueConfig

APP = Path(__file__).resolve().parent / "apps" / "fanout"


def _answered(value: Any) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


class _Method:
    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self._answer = answer

    def remote(self, arg: Any) -> asyncio.Future[Any]:
        return _answered(self._answer(arg))


class _Dispatcher:
    """An actor handle whose ``publish`` accepts at once."""

    publish = _Method(len)


class _StateActor:
    """An actor handle whose ``batch`` answers each update as applied."""

    batch = _Method(lambda calls: wire.outcomes_out([(True, (None, {"done": 1}))] * len(calls)))


class _Telemetry:
    def record(self, lines: Any, spans: Any) -> None:
        pass


class _Runtime:
    def __init__(self) -> None:
        self.bus = ActorBus(_Dispatcher())
        self.state = ActorStateStore(_StateActor())
        self.telemetry = _Telemetry()


async def _cpu_us(n: int, run: Callable[[], Awaitable[None]]) -> float:
    gc.collect()
    gc.disable()
    try:
        t = time.process_time()
        await run()
        return (time.process_time() - t) / n * 1e6
    finally:
        gc.enable()


async def replica(app: App, n: int) -> dict[str, float]:
    step, rt = app.steps["fanout-start"], _Runtime()

    async def enqueues() -> None:
        ctx = FlowContext(app, rt, step=step, trace_id="t", delivery_id=uuid.uuid4().hex)  # type: ignore[arg-type]
        await asyncio.gather(*(ctx.enqueue("bench.work", {"run": "r", "i": i})
                               for i in range(n)))

    async def nothing(i: int) -> None:
        return None

    async def empty() -> None:
        await asyncio.gather(*(nothing(i) for i in range(n)))

    await enqueues()
    return {"replica: ctx.enqueue in a gather": await _cpu_us(n, enqueues),
            "replica: the gather alone": await _cpu_us(n, empty)}


async def worker(app: App, n: int) -> dict[str, float]:
    rt, batch = _Runtime(), 256

    def wires(base: str) -> list[list[Any]]:
        return [wire.delivery_out(Delivery(f"{base}-{i}>fanout-work", "fanout-work",
                                           TriggerKind.QUEUE, {"run": "r", "i": i}, "t",
                                           topic="bench.work", message_id=f"{base}-{i}"))
                for i in range(n)]

    async def run(ws: list[list[Any]]) -> None:
        for k in range(0, len(ws), batch):
            ds = wire.deliveries_in(ws[k:k + batch])
            await asyncio.gather(*(run_one(app, rt, d) for d in ds))  # type: ignore[arg-type]

    await run(wires("warm")[:batch])
    ws = wires(uuid.uuid4().hex)
    return {"task worker: a delivery of a 256 batch": await _cpu_us(n, lambda: run(ws))}


class _Succeed:
    async def run(self, step: Step, delivery: Delivery, cfg: QueueConfig, *,
                  alone: bool) -> None:
        return None


async def engine(app: App, n: int) -> dict[str, float]:
    eng = DeliveryEngine(app, MemoryJournal(), _Succeed())
    await eng.start()
    chunk = 1_000

    async def fan_out() -> None:
        msgs = [Message("bench.work", {"run": "r", "i": i}, "t", source="fanout-start",
                        parent="p") for i in range(n)]
        for k in range(0, n, chunk):
            await eng.publish(msgs[k:k + chunk])
        while eng.stats()["in_flight"]:
            await asyncio.sleep(0.001)

    await fan_out()
    took = await _cpu_us(n, fan_out)
    for task in list(eng._tasks):
        task.cancel()
    return {"dispatcher: the engine alone": took}


async def state(app: App, n: int, url: str) -> dict[str, float]:
    async def invoke(d: Delivery) -> None:
        return None

    triggers = ChangeTriggers(app, ChangeSource.STATE, invoke=invoke,
                              context=lambda s, o: FlowContext(app, None, step=s,  # type: ignore[arg-type]
                                                               trace_id=o.trace_id))
    service = StateService(make_backend(url, f"bench-per-delivery-{uuid.uuid4().hex[:8]}"),
                           triggers)
    run, ops, batch = uuid.uuid4().hex, [{"type": "increment", "path": "done"},
                                         {"type": "increment", "path": "sum", "by": 3}], 256
    await service.set("runs", run, {"n": 10**9, "done": 0, "sum": 0}, Origin("t", None, None))

    def calls(base: str) -> list[list[Any]]:
        out = []
        for i in range(n):
            owner = f"{base}-{i}"
            effect = Effect(owner, hashlib.blake2b(f"{owner}|u".encode(),
                                                   digest_size=16).hexdigest())
            out.append(wire.call_out("update", ("runs", run, ops,
                                                Origin("t", "fanout-work", effect))))
        return out

    async def updates(cs: list[list[Any]]) -> None:
        for k in range(0, len(cs), batch):
            await service.batch(cs[k:k + batch])

    await updates(calls("warm")[:batch])
    cs = calls(uuid.uuid4().hex)
    label = "memory" if url == "memory" else "Redis"
    return {f"state actor ({label}): an update of a 256 batch":
            await _cpu_us(n, lambda: updates(cs))}


async def measure(n: int, redis: str | None) -> dict[str, float]:
    app = load_app(APP)
    out: dict[str, float] = {}
    out |= await replica(app, n)
    out |= await engine(app, n)
    out |= await worker(app, n)
    out |= await state(app, n, "memory")
    if redis:
        out |= await state(app, n, redis)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--redis", nargs="?", const=REDIS_URL,
                   help="the state service on Redis too (this URL, or REDIS_URL's)")
    p.add_argument("--json")
    args = p.parse_args()
    runs = [asyncio.run(measure(args.n, args.redis)) for _ in range(args.repeat)]
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"CPU per delivery in this process, us (median of {args.repeat}, n={args.n})")
    for k, v in medians.items():
        print(f"  {k:48s} {v:7.1f}")
    write_json(args.json, "per_delivery", [{"stage": k, "us": v} for k, v in medians.items()],
               n=args.n, repeat=args.repeat)


if __name__ == "__main__":
    main()
