"""The in-process runtime :class:`~raypipe.testing.TestApp` runs an app on: the parts the Ray
shells wrap, run in one event loop. The delivery engine with its journal, the state service
over the app's state backend, the streams service and its hub, the change triggers, and the
telemetry store are the same objects the dispatcher, state, streams and telemetry actors
host; only the executor differs, running each attempt on this loop instead of in a Ray task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from raypipe import constants
from raypipe import triggers as t
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.context import FlowContext
from raypipe.engine.attempt import AttemptError, outcome_error
from raypipe.engine.clock import Clock
from raypipe.engine.delivery import Delivery
from raypipe.engine.engine import DeliveryEngine
from raypipe.engine.journal import make_journal
from raypipe.engine.lease import Lease, MemoryLease
from raypipe.engine.outcomes import Outcomes, TraceOutcome
from raypipe.execution import run_batch, run_one
from raypipe.messages import Message
from raypipe.objects import LocalObjects
from raypipe.runtime_protocols import Bus, DeadLetters, Ids, Origin, StateResult, StateStore
from raypipe.shards import (
    ShardedBus,
    ShardedDeadLetters,
    ShardedRelay,
    ShardedState,
    ShardedStreams,
    delivery_shard,
)
from raypipe.shared_types import Groups, Items, Ops
from raypipe.state.backend import make_backend
from raypipe.state.change import Deferred
from raypipe.state.service import Answer, StateService
from raypipe.steps import Step
from raypipe.streams.api import StreamStore
from raypipe.streams.relay import Relay, Subscriptions
from raypipe.streams.service import StreamsService
from raypipe.telemetry import AttemptSpans, Span, TelemetryService
from raypipe.trigger_kind import ChangeSource

__all__ = ["LocalRuntime"]


class LocalTelemetry(TelemetryService):
    """The telemetry actor's service, in-process: also the sink log lines and spans are
    recorded into as they happen (nothing is batched)."""

    def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None:
        self.add(lines, spans)

    def flush(self) -> None:
        pass


class LocalExecutor:
    """Runs each attempt on this loop, as a worker runs it in a Ray task
    (:func:`raypipe.execution.run_one`: the same outcome, ``sys.exit`` included), within
    its ``visibility_timeout``."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime
        #: Attempts running now (their handlers may wait on real time or I/O).
        self.running = 0

    def start_many(self, step: Step, deliveries: list[Delivery],
                   cfg: t.QueueConfig) -> list[asyncio.Future[None]]:
        """First attempts made ready together: a batch handler's in batches of its
        ``max_size``, as a pool's actor gets them; any other step's each on its own."""
        batch = step.config.ray.batch
        loop = asyncio.get_running_loop()
        if batch is None:
            return [loop.create_task(self.run(step, d, cfg, alone=False)) for d in deliveries]
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in deliveries]
        for i in range(0, len(deliveries), batch.max_size):
            chunk = list(zip(deliveries[i:i + batch.max_size],
                             futures[i:i + batch.max_size], strict=True))
            self._runtime.spawn(self._batch(chunk, cfg))
        return futures

    async def _batch(self, chunk: list[tuple[Delivery, asyncio.Future[None]]],
                     cfg: t.QueueConfig) -> None:
        self.running += 1
        try:
            try:
                outcomes = await asyncio.wait_for(
                    run_batch(self._runtime.app, self._runtime, [d for d, _ in chunk]),
                    cfg.visibility_timeout)
            except asyncio.TimeoutError:
                outcomes = [{"error": "ran past its visibility_timeout", "traceback": "",
                             "cause": "timeout"}] * len(chunk)
        finally:
            self.running -= 1
        for (_, fut), outcome in zip(chunk, outcomes, strict=True):
            if outcome is None:
                fut.set_result(None)
            else:
                fut.set_exception(outcome_error(outcome))

    async def run(self, step: Step, delivery: Delivery, cfg: t.QueueConfig, *,
                  alone: bool) -> None:
        if step.config.ray.batch is not None:  # a retry: a batch of one
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            await self._batch([(delivery, fut)], cfg)
            await fut
            return
        self.running += 1
        try:
            attempt = run_one(self._runtime.app, self._runtime, delivery)
            try:
                outcome = await asyncio.wait_for(attempt, cfg.visibility_timeout)
            except asyncio.TimeoutError:
                raise AttemptError(f"step {step.name!r} ran past its visibility_timeout of "
                                   f"{cfg.visibility_timeout}s; it was cancelled", "",
                                   "timeout") from None
        finally:
            self.running -= 1
        if outcome is not None:
            raise outcome_error(outcome)


class _Hooks:
    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime
        self._spans = AttemptSpans(lambda: runtime.telemetry)

    def attempt_started(self, step: Step, d: Delivery) -> None:
        self._spans.started(step.name, d)

    def attempt_finished(self, step: Step, d: Delivery, outcome: str, error: str | None,
                         seconds: float) -> None:
        self._spans.finished(d, outcome, error)

    def workflow_finished(self, flow: str, outcome: TraceOutcome) -> None:
        pass

    def released(self, delivery_ids: list[str]) -> None:
        # Settled deliveries' effect records may go, as the dispatcher tells the actors.
        self._runtime.spawn(self._runtime.release(delivery_ids))
        for engine in self._runtime.engines:
            engine.forget_caused(delivery_ids)  # the settling shard's own: already forgotten


class _State:
    """The state service as a :class:`~raypipe.runtime_protocols.StateStore`: made with
    ``defer_large=False``, its writes answer their values (a large item's update: a change
    that makes them when read)."""

    def __init__(self, service: StateService) -> None:
        self.service = service

    @staticmethod
    def _values(answer: Answer) -> StateResult:
        assert not isinstance(answer, Deferred), "a local state service never defers"
        return answer

    async def get(self, group: str, key: str) -> Any:
        return await self.service.get(group, key)

    async def set(self, group: str, key: str, value: Any,
                  origin: Origin) -> StateResult:
        return self._values(await self.service.set(group, key, value, origin))

    async def update(self, group: str, key: str, ops: Ops,
                     origin: Origin) -> StateResult:
        return self._values(await self.service.update(group, key, ops, origin))

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        return await self.service.delete(group, key, origin)

    async def list(self, group: str) -> Items:
        return await self.service.list(group)

    async def list_groups(self) -> Groups:
        return await self.service.list_groups()

    async def clear(self, group: str, origin: Origin) -> None:
        await self.service.clear(group, origin)


class _Bus:
    def __init__(self, engine: DeliveryEngine) -> None:
        self._engine = engine

    async def publish(self, messages: Sequence[Message]) -> None:
        await self._engine.publish(messages)


class _DeadLetters:
    def __init__(self, engine: DeliveryEngine) -> None:
        self._engine = engine

    async def list(self) -> Items:
        await self._engine.start()
        return self._engine.public_dead_letters()

    async def get(self, entry_id: str) -> dict[str, Any] | None:
        await self._engine.start()
        return self._engine.public_dead_letter(entry_id)

    async def replay(self, entry_ids: Sequence[str] | None = None) -> Ids:
        return await self._engine.replay(None if entry_ids is None else list(entry_ids))


class LocalRuntime:
    """A :class:`~raypipe.runtime_protocols.Runtime` of one process: everything on the
    running loop."""

    def __init__(self, app: App, clock: Clock) -> None:
        """With ``shards = K`` in the app's settings, K delivery engines and K state services
        split the work as the dispatcher and state actors do (:mod:`raypipe.shards`); they
        share one tally, so a workflow is counted whole."""
        settings = app.settings
        k = settings.shards
        self.app = app
        self.telemetry = LocalTelemetry()
        self.executor = LocalExecutor(self)
        outcomes = Outcomes()
        lease = None if k == 1 else _cron_lease(app, clock)
        #: Each shard's engine; the first is :attr:`engine`.
        self.engines = [
            DeliveryEngine(app, make_journal(settings.state, settings.name, i, k),
                           self.executor, clock=clock, hooks=_Hooks(self), outcomes=outcomes,
                           stuck_after=settings.stuck_after_seconds, cron_lease=lease)
            for i in range(k)]
        self.engine = self.engines[0]
        # Writes answer with their values: there is no process boundary to save them across.
        self.state_services = [
            StateService(make_backend(settings.state, settings.name, constants.STATE_SPACE, i, k),
                         self._triggers(ChangeSource.STATE), defer_large=False)
            for i in range(k)]
        self.state_service = self.state_services[0]
        self.stream_services = [
            StreamsService(app, None if settings.state == "memory" else make_backend(
                settings.state, settings.name, constants.STREAMS_SPACE, i, k),
                self._triggers(ChangeSource.STREAM))
            for i in range(k)]
        self.streams: StreamStore = (self.stream_services[0] if k == 1
                                     else ShardedStreams(self.stream_services))
        self.state: StateStore
        self.bus: Bus
        self.dead_letters: DeadLetters
        if k == 1:
            self.state = _State(self.state_service)
            self.bus = _Bus(self.engine)
            self.dead_letters = _DeadLetters(self.engine)
        else:
            self.state = ShardedState([_State(s) for s in self.state_services])
            self.bus = ShardedBus([_Bus(e) for e in self.engines], app)
            self.dead_letters = ShardedDeadLetters([_DeadLetters(e) for e in self.engines])
        self.objects = LocalObjects(settings.ref_grace_seconds, clock.monotonic,
                                    self.refs_in_use)
        self._relay: Subscriptions | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _triggers(self, source: ChangeSource) -> ChangeTriggers:
        return ChangeTriggers(self.app, source, invoke=self._invoke,
                              context=self._context)

    async def _invoke(self, delivery: Delivery) -> None:
        await self.engines[delivery_shard(delivery, len(self.engines))].invoke([delivery])

    def _context(self, step: Step, origin: Origin) -> FlowContext:
        return FlowContext(self.app, self, step=step, trace_id=origin.trace_id)

    def relay(self) -> Subscriptions:
        if self._relay is None:
            relays = [Relay(s) for s in self.stream_services]
            self._relay = relays[0] if len(relays) == 1 else ShardedRelay(relays)
        return self._relay

    async def health(self) -> dict[str, str]:
        try:
            for service in self.state_services:
                await service.ping()
        except Exception as exc:
            return {"state": f"{type(exc).__name__}: {exc}", "dispatcher": "ok"}
        return {"state": "ok", "dispatcher": "ok"}

    async def stats(self) -> dict[str, Any]:
        """As the dispatchers': a pool step runs in-process here, so no pool is listed."""
        return {**self.engine.stats(), "version": self.app.version, "pools": {},
                "dead_letters": sum(len(e.dead_letters) for e in self.engines)}

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refs_in_use(self, candidates: Mapping[str, str | None]) -> set[str]:
        """What a sweep of :attr:`objects` asks: the engine, state and streams, in turn."""
        used: set[str] = set()
        for streams in self.stream_services:
            used |= await streams.refs_in_use(candidates)
        for engine in self.engines:
            used |= engine.refs_in_use(candidates)
        for service in self.state_services:
            used |= await service.refs_in_use(candidates)
        return used

    async def release(self, delivery_ids: list[str]) -> None:
        for service in self.state_services:
            await service.release(delivery_ids)
        for streams in self.stream_services:
            await streams.release(delivery_ids)

    @property
    def busy(self) -> bool:
        """Whether anything is running or left to run now (not waiting on the clock)."""
        return bool(self.executor.running or self._tasks)

    async def start(self) -> None:
        for engine in self.engines:
            await engine.start()
        for streams in self.stream_services:
            await streams._load()
        # Records of deliveries an earlier run settled without releasing them.
        for service in self.state_services:
            await service.sweep_records()
        for streams in self.stream_services:
            await streams.sweep_records()

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.close()
        for engine in self.engines:
            await engine.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for backend in (*[s.backend for s in self.state_services],
                        *[s.store for s in self.stream_services]):
            if backend is not None:
                await backend.close()


def _cron_lease(app: App, clock: Clock) -> Lease:
    """Where the shards agree which runs the cron schedules: in this process, or, with Redis
    state, in Redis as on Ray."""
    if app.settings.state == "memory":
        return MemoryLease(clock.monotonic)
    from raypipe.engine.redis_journal import RedisLease

    return RedisLease(app.settings.state, app.settings.name)
