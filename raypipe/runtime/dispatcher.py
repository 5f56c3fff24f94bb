"""The dispatcher actor: a thin Ray shell over the delivery engine (:mod:`raypipe.engine`).
It runs attempts as Ray tasks (:mod:`raypipe.runtime.executor`), journals to the app's state
backend, sends spans to the workbench, exports the engine's tally as Ray metrics, and tells the
state and streams actors which deliveries' effect records may go.

It is an async actor: a delivery waiting on its task or sleeping through a backoff is a
suspended coroutine here, never a blocked worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import ray
from ray.experimental import internal_kv

from raypipe import constants, wire
from raypipe.engine.clock import SystemClock
from raypipe.engine.delivery import Delivery
from raypipe.engine.engine import DeliveryEngine
from raypipe.engine.journal import make_journal
from raypipe.engine.lease import Lease
from raypipe.engine.outcomes import Outcomes, TraceOutcome
from raypipe.engine.workflow_count import COUNT_SECONDS, Part, WorkflowCount
from raypipe.messages import Message
from raypipe.runtime import gc_tuning, registry, shipping
from raypipe.runtime.executor import RayExecutor
from raypipe.runtime.metrics import FLUSH_SECONDS, DeliveryMetrics
from raypipe.runtime.spec import AppSpec
from raypipe.settings import redact_url
from raypipe.shards import shard_of
from raypipe.steps import Step
from raypipe.telemetry import AttemptSpans

log = logging.getLogger("raypipe.dispatcher")

#: How often settled deliveries' effect records are released in the actors that keep them.
RELEASE_SECONDS = 0.5


class _RuntimeHooks:
    """Spans for the workbench's traces, latencies for the metrics, and releases of settled
    deliveries' effect records in the actors that keep them."""

    def __init__(self, spec: AppSpec, metrics: DeliveryMetrics, shard: int) -> None:
        self.spec = spec
        self.metrics = metrics
        self.shard = shard
        self._telemetry: Any = None
        self._spans = AttemptSpans(self._sink)
        self._release_to: list[Any] | None = None
        self._releasing: list[str] = []

    def _sink(self) -> Any:
        if self._telemetry is None:
            from raypipe.runtime.bridge import runtime_for

            try:
                self._telemetry = runtime_for(self.spec).telemetry
            except Exception:  # no telemetry actor: spans are lost, deliveries are not
                log.warning("no telemetry actor; the workbench will show no traces",
                            exc_info=True)
                self._telemetry = _NoTelemetry()
        return self._telemetry

    def attempt_started(self, step: Step, d: Delivery) -> None:
        self._spans.started(step.name, d)

    def attempt_finished(self, step: Step, d: Delivery, outcome: str, error: str | None,
                         seconds: float) -> None:
        self.metrics.latency(step.name, seconds)
        self._spans.finished(d, outcome, error)

    def workflow_finished(self, flow: str, outcome: TraceOutcome) -> None:
        self.metrics.workflow(flow, outcome)

    def released(self, delivery_ids: list[str]) -> None:
        # Sent together every RELEASE_SECONDS: a settle batch each was an actor call per
        # batch task to each actor, for records that cost little to keep a moment longer.
        if not self._releasing:
            asyncio.get_running_loop().call_later(RELEASE_SECONDS, self._send_releases)
        self._releasing.extend(delivery_ids)

    def _keepers(self) -> list[Any]:
        """The actors keeping effect records: the streams and state shards."""
        shards = range(self.spec.settings.shards)
        return [ray.get_actor(constants.shard_actor(n, i), namespace=self.spec.namespace)
                for n in (constants.STREAMS_ACTOR, constants.STATE_ACTOR) for i in shards]

    def _send_releases(self) -> None:
        delivery_ids, self._releasing = self._releasing, []
        if self._release_to is None:
            # The streams and state shards drop the records of these deliveries'
            # effects; the other dispatcher shards forget what these deliveries caused there.
            shards = self.spec.settings.shards
            try:
                others = [ray.get_actor(constants.shard_actor(constants.DISPATCHER_ACTOR, i),
                                        namespace=self.spec.namespace).forget_caused
                          for i in range(shards) if i != self.shard]
                self._release_to = [k.release for k in self._keepers()] + others
            except ValueError:
                return  # not started yet: nothing of theirs to release
        for method in self._release_to:
            # Not waited on: a release lost with this actor (or its Redis) is made good by
            # the sweep this shard's next life asks for.
            method.remote(delivery_ids)

    def sweep_records(self) -> None:
        """Ask the keepers of effect records to drop those of deliveries no journal holds:
        releases a dispatcher's earlier life collected and did not send. Not waited on."""
        try:
            keepers = self._keepers()
        except ValueError:
            return  # a first start: nothing was released before
        for keeper in keepers:
            keeper.sweep_records.remote()


class _PeerShard:
    """Another dispatcher shard, as :class:`~raypipe.engine.workflow_count.Shard`."""

    def __init__(self, handle: Any) -> None:
        self._h = handle

    async def trace_parts(self, trace_ids: list[str]) -> dict[str, Part]:
        return await self._h.trace_parts.remote(trace_ids)  # type: ignore[no-any-return]

    async def forget_traces(self, seen: dict[str, Part]) -> None:
        await self._h.forget_traces.remote(seen)

    async def watch_traces(self, trace_ids: list[str]) -> None:
        await self._h.watch_traces.remote(trace_ids)


class _StateActorLease(Lease):
    """The cron lease of a memory-state app, held by its first state shard: it outlives any
    dispatcher, and a state actor that restarts loses the app's state anyway."""

    def __init__(self, spec: AppSpec) -> None:
        self._spec = spec
        self._holder: Any = None

    async def acquire(self, owner: str, seconds: float) -> bool:
        if self._holder is None:  # a GCS look-up: once, not at every renewal
            self._holder = ray.get_actor(constants.STATE_ACTOR, namespace=self._spec.namespace)
        return bool(await self._holder.cron_lease.remote(owner, seconds))


def cron_lease(spec: AppSpec) -> Lease:
    """Where a sharded app's dispatchers agree which of them runs the cron schedules."""
    if spec.settings.state == "memory":
        return _StateActorLease(spec)
    from raypipe.engine.redis_journal import RedisLease

    return RedisLease(spec.settings.state, spec.settings.name)


class _NoTelemetry:
    def record(self, lines: Any, spans: Any) -> None:
        pass


class _Tally:
    """The engine's counts, kept in the GCS key-value store every :data:`FLUSH_SECONDS` and
    read back when Ray restarts the dispatcher: ``raypipe status`` counts on (less what the
    last interval before a crash counted) instead of starting from zero."""

    def __init__(self, spec: AppSpec, outcomes: Outcomes, shard: int) -> None:
        key = constants.TALLY_KEY if shard == 0 else constants.SHARD_TALLY_KEY
        self._key = key.format(namespace=spec.namespace, shard=shard).encode()
        self._outcomes = outcomes
        self._saved: dict[str, dict[str, int]] = {}

    def restore(self) -> None:
        try:
            raw = internal_kv._internal_kv_get(self._key)
            saved = json.loads(raw) if raw else {}
        except Exception:  # a tally is worth less than a dispatcher that starts
            log.warning("the saved tally could not be read; counting from zero", exc_info=True)
            return
        for step, counts in saved.items():
            for event, n in counts.items():
                self._outcomes.count(step, event, int(n))
        self._saved = self._outcomes.snapshot()

    def save(self) -> None:
        now = self._outcomes.snapshot()
        if now != self._saved:
            internal_kv._internal_kv_put(self._key, json.dumps(now).encode(), overwrite=True)
            self._saved = now


# max_task_retries: a call in flight when the actor dies waits for the restart and is retried
# there (publish and invoke are idempotent by message and delivery id), instead of failing.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Dispatcher:
    def __init__(self, spec: AppSpec, shard: int = 0) -> None:
        """Shard ``shard`` of the app's ``shards`` dispatchers (:mod:`raypipe.shards`)."""
        spec = self.spec = registry.current(spec)
        app = shipping.load(spec)
        shards = spec.settings.shards
        outcomes, clock = Outcomes(traces=shards == 1), SystemClock()
        self._tally = _Tally(spec, outcomes, shard)
        self._tally.restore()
        self.metrics = DeliveryMetrics(spec.settings.name, outcomes, clock)
        self.metrics.running(spec.version)
        self.executor = RayExecutor(spec, outcomes, app, shard, shards)
        self.hooks = _RuntimeHooks(spec, self.metrics, shard)
        self.engine = DeliveryEngine(
            app, make_journal(spec.settings.state, spec.settings.name, shard, shards),
            self.executor, clock=clock, outcomes=outcomes, hooks=self.hooks,
            stuck_after=spec.settings.stuck_after_seconds,
            cron_lease=None if shards == 1 else cron_lease(spec))
        #: With several shards, workflows are counted across them (a life per actor start).
        self.workflows = None if shards == 1 else WorkflowCount(
            outcomes, shard, lambda trace_id: shard_of(trace_id, shards), uuid.uuid4().hex,
            self.hooks.workflow_finished)
        self._exporting = False
        # Ray restarts a dead actor without calling it, and nothing else may call it for a
        # while: wake it up so it recovers the journal and resumes its cron schedules at once.
        self._wake = ray.get_runtime_context().current_actor.ready.remote()
        gc_tuning.settle()

    async def _started(self) -> None:
        await self.engine.start()
        if not self._exporting:
            self._exporting = True
            self.engine.spawn(self._export())
            self.hooks.sweep_records()
            if self.workflows is not None:
                self.engine.spawn(self._count_workflows(self.workflows))

    async def _export(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.metrics.flush(self.executor.pools())
            self._tally.save()

    async def _count_workflows(self, count: WorkflowCount) -> None:
        peers: list[Any] | None = None
        while True:
            await asyncio.sleep(COUNT_SECONDS)
            try:
                if peers is None:
                    peers = [count if i == count.shard else _PeerShard(ray.get_actor(
                        constants.shard_actor(constants.DISPATCHER_ACTOR, i),
                        namespace=self.spec.namespace))
                        for i in range(self.spec.settings.shards)]
                await count.tick(peers)
            except Exception:
                # A shard restarting or not started yet: its traces are told again next time.
                log.debug("a round of workflow counting failed", exc_info=True)

    async def ready(self) -> bool:
        await self._started()
        return True

    async def warm(self, delay: float = 0.0) -> None:
        """Start the task workers the app's steps will run in, and its actor pools, after
        ``delay`` seconds (a deploy asks once the app answers)."""
        await self._started()
        await asyncio.sleep(delay)
        self.executor.warm()

    async def reload(self, spec: AppSpec) -> str:
        """A redeploy: new deliveries run the new version; those in flight finish on the
        version they started with (their batch tasks carry it)."""
        await self._started()
        app = shipping.load(spec)
        self.spec = self.hooks.spec = spec
        self.executor.reload(spec, app)
        self.engine.replace_app(app)
        self.metrics.running(spec.version)
        return spec.version

    async def state_url(self) -> str:
        return self.spec.settings.state

    async def shard_count(self) -> int:
        return self.spec.settings.shards

    # --- workflows counted across the shards (raypipe.engine.workflow_count) ------------------
    async def trace_parts(self, trace_ids: list[str]) -> dict[str, Part]:
        # Only once this life recovered its journal: a delivery still to recover is a part
        # of its trace that a read must not miss.
        await self._started()
        assert self.workflows is not None
        return await self.workflows.trace_parts(trace_ids)

    async def forget_traces(self, seen: dict[str, Part]) -> None:
        await self._started()
        assert self.workflows is not None
        await self.workflows.forget_traces(seen)

    async def watch_traces(self, trace_ids: list[str]) -> None:
        await self._started()
        assert self.workflows is not None
        await self.workflows.watch_traces(trace_ids)

    async def forget_caused(self, delivery_ids: list[str]) -> None:
        """Deliveries another shard settled (see :meth:`DeliveryEngine.forget_caused`)."""
        await self._started()
        self.engine.forget_caused(delivery_ids)

    async def ping(self) -> str:
        """The version this dispatcher runs (the health route asks)."""
        return self.spec.version

    async def publish(self, messages: list[wire.Wire | Message]) -> int:
        """Messages as :func:`raypipe.wire.messages_out` sends them (or made in-process)."""
        await self._started()
        return await self.engine.publish(wire.messages_in(messages))

    async def invoke(self, deliveries: list[Delivery]) -> None:
        await self._started()
        await self.engine.invoke(deliveries)

    async def list_dead_letters(self) -> list[dict[str, Any]]:
        await self._started()
        return self.engine.public_dead_letters()

    async def get_dead_letter(self, entry_id: str) -> dict[str, Any] | None:
        await self._started()
        return self.engine.public_dead_letter(entry_id)

    async def replay(self, entry_ids: list[str] | None = None) -> list[str]:
        await self._started()
        return await self.engine.replay(entry_ids)

    async def refs_in_use(self, candidates: dict[str, str | None]) -> set[str]:
        await self._started()
        return self.engine.refs_in_use(candidates)

    async def stats(self) -> dict[str, Any]:
        await self._started()
        return {**self.engine.stats(), "state": redact_url(self.spec.settings.state),
                "version": self.spec.version, "pools": self.executor.pools(),
                "nodes": self.executor.placement()}
