"""The :class:`~raypipe.runtime_protocols.Runtime` of a process that talks to the app's actors."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import ray

from raypipe import constants, wire
from raypipe.engine.loopbatch import LoopBatcher, Outcome
from raypipe.errors import BackendUnavailableError, RefGoneError, RuntimeNotRunningError
from raypipe.messages import Message
from raypipe.objects import holder_of, new_ref, parse_ref
from raypipe.refs import Ref
from raypipe.runtime.spec import AppSpec
from raypipe.runtime_protocols import Bus, DeadLetters, Ids, Origin, StateStore
from raypipe.shards import (
    ShardedBus,
    ShardedDeadLetters,
    ShardedRelay,
    ShardedState,
    ShardedStreams,
    merge_stats,
)
from raypipe.shared_types import Groups, Items, Ops
from raypipe.state.change import Deferred, StateChange
from raypipe.streams.api import StreamStore
from raypipe.streams.hub import Events, Key
from raypipe.streams.relay import Relay, Subscriptions
from raypipe.telemetry import merged, span_key

__all__ = ["HEALTH_TIMEOUT", "RayRuntime", "actor", "runtime_for"]

#: Seconds each part of the app has to answer a health check.
HEALTH_TIMEOUT = 3.0

#: Calls of one loop turn sent to an actor in one call at most; more go in several, the first
#: sent while the rest are made (see :class:`~raypipe.engine.loopbatch.LoopBatcher`).
MOST_PER_CALL = 1_000


def actor(name: str, namespace: str) -> Any:
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError as exc:
        raise RuntimeNotRunningError(
            f"actor {name!r} is not running in namespace {namespace!r}; start the app with "
            "`raypipe dev` or `raypipe start`") from exc


class _BatchedActor:
    """Calls to an actor with a ``batch`` method (:func:`~raypipe.engine.loopbatch.run_calls`):
    those made in one turn of the caller's event loop (the concurrent deliveries of a batch
    task, a handler's ``gather``) go in one actor call per :data:`MOST_PER_CALL`, and are
    started there in the order they were made (writes to one item apply in that order)."""

    def __init__(self, handle: Any) -> None:
        self._h = handle
        self._batcher: LoopBatcher[wire.Wire, Any] = LoopBatcher(self._send, MOST_PER_CALL)

    def _send(self, calls: list[wire.Wire]) -> Awaitable[list[Outcome[Any]]]:
        return self._h.batch.remote(calls)  # type: ignore[no-any-return]  # an ObjectRef

    def _call(self, method: str, *args: Any) -> asyncio.Future[Any]:
        return self._batcher.call(wire.call_out(method, args))


class ActorStateStore(_BatchedActor):
    """Calls the state actor; gets and writes batched per loop turn."""

    async def get(self, group: str, key: str) -> Any:
        return await self._call("get", group, key)

    async def set(self, group: str, key: str, value: Any, origin: Origin) -> StateChange:
        return self._change(await self._call("set", group, key, value, origin), origin)

    async def delete(self, group: str, key: str, origin: Origin) -> Any:
        return await self._call("delete", group, key, origin)

    async def list(self, group: str) -> Items:
        return await self._h.list.remote(group)  # type: ignore[no-any-return]

    async def list_groups(self) -> Groups:
        return await self._h.list_groups.remote()  # type: ignore[no-any-return]

    async def clear(self, group: str, origin: Origin) -> None:
        await self._h.clear.remote(group, origin)

    async def update(
        self, group: str, key: str, ops: Ops, origin: Origin
    ) -> StateChange:
        return self._change(await self._call("update", group, key, ops, origin), origin)

    def _change(self, answer: Any, origin: Origin) -> StateChange:
        if not isinstance(answer, Deferred):
            return StateChange.of(answer)
        effect = origin.effect
        # Read only by a delivery's handler, in a worker (never in an async actor), while
        # the delivery runs: its write's effect record holds the values until it settles.
        return StateChange(load=lambda: tuple(ray.get(self._h.applied.remote(effect))))


class ActorBus:
    """Publishes to the dispatcher, coalescing the enqueues a handler makes in one turn of its
    event loop (``asyncio.gather`` of a fan-out) into one actor call per
    :data:`MOST_PER_CALL`."""

    def __init__(self, handle: Any) -> None:
        self._h = handle
        self._batcher: LoopBatcher[Sequence[Message], None] = LoopBatcher(
            self._send, MOST_PER_CALL, _has_fifo_messages)

    def _send(self, batches: list[Sequence[Message]]) -> Awaitable[list[Outcome[None]]]:
        # Submitted now, not when awaited: see LoopBatcher.
        sent = self._h.publish.remote(wire.messages_out([m for batch in batches for m in batch]))

        async def accepted() -> list[Outcome[None]]:
            await sent
            return [(True, None)] * len(batches)

        return accepted()

    async def publish(self, messages: Sequence[Message]) -> None:
        await self._batcher.call(messages)


def _has_fifo_messages(batches: list[Sequence[Message]]) -> bool:
    """Whether a part of a turn's enqueues must reach the dispatcher after the parts before
    it: only messages of a FIFO group are delivered in the order they were sent."""
    return any(m.group_id is not None for batch in batches for m in batch)


class ActorStreamStore(_BatchedActor):
    """Both a StreamStore (for ``ctx.streams``) and a relay's HubClient; gets and writes
    batched per loop turn, as the state's."""

    async def get(self, stream: str, group: str, item_id: str) -> Any:
        return await self._call("get", stream, group, item_id)

    async def set(self, stream: str, group: str, item_id: str, data: Any,
                  origin: Origin) -> tuple[Any, Any]:
        return tuple(await self._call("set", stream, group, item_id, data, origin))  # type: ignore[return-value]

    async def update(self, stream: str, group: str, item_id: str, ops: Ops,
                     origin: Origin) -> tuple[Any, Any]:
        return tuple(await self._call("update", stream, group, item_id, ops, origin))  # type: ignore[return-value]

    async def delete(self, stream: str, group: str, item_id: str, origin: Origin) -> Any:
        return await self._call("delete", stream, group, item_id, origin)

    async def list(self, stream: str, group: str) -> Items:
        return await self._h.list.remote(stream, group)  # type: ignore[no-any-return]

    async def list_groups(self, stream: str) -> Groups:
        return await self._h.list_groups.remote(stream)  # type: ignore[no-any-return]

    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any],
                   origin: Origin) -> None:
        await self._h.send.remote(stream, channel, event, origin)

    async def join(self, relay_id: str, key: Key) -> tuple[int, dict[str, Any]]:
        return tuple(await self._h.join.remote(relay_id, key))  # type: ignore[return-value]

    async def leave(self, relay_id: str, key: Key) -> None:
        await self._h.leave.remote(relay_id, key)

    async def poll(self, relay_id: str, timeout: float) -> tuple[bool, Events]:
        return tuple(await self._h.poll.remote(relay_id, timeout))  # type: ignore[return-value]


class ActorDeadLetters:
    def __init__(self, handle: Any) -> None:
        self._h = handle

    async def list(self) -> Items:
        return await self._h.list_dead_letters.remote()  # type: ignore[no-any-return]

    async def get(self, entry_id: str) -> dict[str, Any] | None:
        return await self._h.get_dead_letter.remote(entry_id)  # type: ignore[no-any-return]

    async def replay(self, entry_ids: Sequence[str] | None = None) -> Ids:
        ids = None if entry_ids is None else list(entry_ids)
        return await self._h.replay.remote(ids)  # type: ignore[no-any-return]


class ActorObjects:
    """Values by reference through the app's object keeper (started on the first put): the
    value goes from this process to the object store, and the keeper owns it from there;
    a read fetches it from the object store into this process."""

    def __init__(self, spec: AppSpec) -> None:
        self._spec = spec
        self._handle: Any = None

    def _keeper(self) -> Any:
        if self._handle is None:
            from raypipe.runtime.object_keeper import keeper

            self._handle = keeper(self._spec)
        return self._handle

    async def _ask(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._keeper(), method).remote(*args)
        except ray.exceptions.RayActorError:
            # The keeper went (the app restarted): a new one owns what is put from now on
            # and reads the blob store, if any, for what the last one held.
            self._handle = None
            return await getattr(self._keeper(), method).remote(*args)

    async def put(self, value: Any, origin: Origin) -> Ref:
        ref = new_ref(value)
        await self._ask("put", [ray.put(value)], dict(ref), holder_of(origin), self._spec)
        return ref

    async def get(self, ref: Any) -> Any:
        found = parse_ref(ref)
        boxed = await self._ask("lookup", found.id)
        if boxed is None:
            raise RefGoneError(found.id, "no value is held for it (freed after nothing named "
                                         "it, or never put in this app)")
        return await boxed[0]


#: The least time between two telemetry calls of one process. The first records after a
#: quiet spell go at once; under load a process's records wait and go together, so a busy
#: dispatcher, pool actor or Serve replica makes two telemetry calls a second, not one per
#: batch or request: an actor call costs its callee more CPU than the records it carries.
TELEMETRY_INTERVAL = 0.5


#: Seconds a telemetry client's thread waits for records before it ends.
SENDER_IDLE_S = 5.0


class TelemetryClient:
    """Sends log lines and spans to the telemetry actor in batches, without waiting for an
    answer: telemetry never slows a step. A thread of the client's own sends them, so records
    go out on time whether or not the process runs anything else (a task worker between
    tasks, an actor whose loop is idle)."""

    def __init__(self, handle: Any, interval: float = TELEMETRY_INTERVAL) -> None:
        self._h = handle
        self.interval = interval
        self._lines: list[dict[str, Any]] = []
        #: Per attempt, its records merged as the actor merges them: an attempt that starts
        #: and ends within one interval is sent once, not twice.
        self._spans: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._pending = threading.Condition(self._lock)
        self._sender: threading.Thread | None = None
        self._last_sent = float("-inf")

    def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            # The thread waits only while nothing is held: it needs waking once, not per record.
            wake = not (self._lines or self._spans)
            self._lines.extend(lines)
            for span in spans:
                key = span_key(span)
                self._spans[key] = merged(self._spans.get(key), span)
            if self._sender is None:
                # Started with the first record (and again after a quiet spell that ended
                # it): a process that never records has no thread.
                self._sender = threading.Thread(target=self._send_loop, daemon=True,
                                                name="raypipe-telemetry")
                self._sender.start()
            elif wake:
                self._pending.notify()

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                while not (self._lines or self._spans):
                    # A client no one records to any more (an app's version before a reload,
                    # whose runtime a worker keeps) holds no thread: the next record starts one.
                    woken = self._pending.wait(SENDER_IDLE_S)
                    # A record that came as the wait timed out is sent, not left behind.
                    if not (woken or self._lines or self._spans):
                        self._sender = None
                        return
                wait = self._last_sent + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.flush()

    def flush(self) -> None:
        """Send what is waiting now."""
        with self._lock:
            lines, spans = self._lines, list(self._spans.values())
            self._lines, self._spans = [], {}
            self._last_sent = time.monotonic()
        if lines or spans:
            # The actor gone (the app torn down): telemetry is best effort.
            with contextlib.suppress(Exception):
                self._h.record.remote(lines, spans)

    async def logs(self, after: int, flt: dict[str, str | None], timeout: float,
                   limit: int) -> tuple[int, list[dict[str, Any]]]:
        return tuple(await self._h.logs.remote(after, flt, timeout, limit))  # type: ignore[return-value]

    async def traces(self, limit: int) -> list[dict[str, Any]]:
        return await self._h.traces.remote(limit)  # type: ignore[no-any-return]

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        return await self._h.trace.remote(trace_id)  # type: ignore[no-any-return]


class _TimedMethod:
    def __init__(self, method: Any, part: str, timeout: float) -> None:
        self._method, self._part, self._timeout = method, part, timeout

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return _within(self._method.remote(*args, **kwargs), self._part, self._timeout)


async def _within(ref: Any, part: str, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(asyncio.ensure_future(ref), timeout)
    except asyncio.TimeoutError:
        raise BackendUnavailableError(part, timeout) from None


class TimedHandle:
    """An actor handle whose awaited calls raise :class:`BackendUnavailableError` after
    ``timeout`` seconds (the call itself goes on in the actor). An HTTP request that needs a
    part of the app that waits out an outage (the state actor, for Redis) is answered 503
    instead of hanging the ingress. ``exempt`` methods wait as long as they take (a relay's
    long poll)."""

    def __init__(self, handle: Any, part: str, timeout: float,
                 exempt: frozenset[str] = frozenset()) -> None:
        self._h, self._part, self._timeout, self._exempt = handle, part, timeout, exempt

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._h, name)
        if name in self._exempt or name.startswith("_"):
            return method
        return _TimedMethod(method, self._part, self._timeout)


#: The streams actor's calls that may wait by design: a relay's long poll, and its joins.
_UNTIMED_STREAM_CALLS = frozenset({"poll", "join", "leave"})


class RayRuntime:
    def __init__(self, spec: AppSpec, deadline: float | None = None) -> None:
        """``deadline``: seconds a call to the state, streams or dispatcher actor may take
        before it raises :class:`BackendUnavailableError` (the ingress's runtime); ``None``
        waits as long as it takes (a delivery waits out an outage)."""
        ns = spec.namespace
        self.spec = spec
        shards = range(spec.settings.shards)
        #: Each shard's dispatcher and state actor (:mod:`raypipe.shards`); shard 0's first.
        self.dispatchers = [actor(constants.shard_actor(constants.DISPATCHER_ACTOR, i), ns)
                            for i in shards]
        self.state_actors = [actor(constants.shard_actor(constants.STATE_ACTOR, i), ns)
                             for i in shards]
        self.dispatcher = self.dispatchers[0]
        dispatchers, states = list(self.dispatchers), list(self.state_actors)
        streams = [actor(constants.shard_actor(constants.STREAMS_ACTOR, i), ns) for i in shards]
        if deadline is not None:
            dispatchers = [TimedHandle(d, "dispatcher", deadline) for d in dispatchers]
            states = [TimedHandle(s, "state backend", deadline, frozenset({"applied"}))
                      for s in states]
            streams = [TimedHandle(s, "streams", deadline, _UNTIMED_STREAM_CALLS)
                       for s in streams]
        self.state: StateStore
        self.bus: Bus
        self.dead_letters: DeadLetters
        if len(shards) == 1:
            self.state = ActorStateStore(states[0])
            self.bus = ActorBus(dispatchers[0])
            self.dead_letters = ActorDeadLetters(dispatchers[0])
        else:
            self.state = ShardedState([ActorStateStore(h) for h in states])
            from raypipe.runtime import shipping

            self.bus = ShardedBus([ActorBus(h) for h in dispatchers], shipping.load(spec))
            self.dead_letters = ShardedDeadLetters([ActorDeadLetters(h) for h in dispatchers])
        #: Each streams shard's, which a relay also polls (:meth:`relay`).
        self._stream_stores = [ActorStreamStore(h) for h in streams]
        self.streams: StreamStore = (self._stream_stores[0] if len(shards) == 1
                                     else ShardedStreams(self._stream_stores))
        self.objects = ActorObjects(spec)
        self.telemetry = TelemetryClient(actor(constants.TELEMETRY_ACTOR, ns))
        self._relays: dict[asyncio.AbstractEventLoop, Subscriptions] = {}

    async def health(self) -> dict[str, str]:
        """``"ok"`` or what is wrong, for the state backend (through the state actor) and the
        dispatcher: what ``/_raypipe/health`` reports (readiness: for load balancers and
        operators, never Serve's replica health check, which restarts the replica)."""
        async def probe(call: Any) -> str:
            try:
                await asyncio.wait_for(call, HEALTH_TIMEOUT)
            except asyncio.TimeoutError:
                return f"no answer within {HEALTH_TIMEOUT:.0f}s"
            except Exception as exc:
                return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return "ok"

        def worst(answers: Sequence[str]) -> str:
            if len(answers) == 1:
                return answers[0]
            wrong = [f"shard {i}: {a}" for i, a in enumerate(answers) if a != "ok"]
            return "; ".join(wrong) or "ok"

        answers = await asyncio.gather(*(probe(h.ping.remote())
                                         for h in [*self.state_actors, *self.dispatchers]))
        k = len(self.state_actors)
        return {"state": worst(answers[:k]), "dispatcher": worst(answers[k:])}

    async def stats(self, timeout: float | None = HEALTH_TIMEOUT) -> dict[str, Any]:
        """What ``raypipe status`` shows, from the dispatchers: deliveries in flight, dead
        letters, each step's tally and each actor pool (actors, busy, backlog); ``timeout``
        ``None`` waits as long as they take."""
        parts = await asyncio.wait_for(
            asyncio.gather(*(d.stats.remote() for d in self.dispatchers)), timeout)
        return merge_stats(parts)

    def relay(self) -> Subscriptions:
        """This process's stream relay (one per event loop: a relay's tasks live on one;
        with several shards, one per streams shard)."""
        loop = asyncio.get_running_loop()
        relay = self._relays.get(loop)
        if relay is None:
            relays = [Relay(s) for s in self._stream_stores]
            relay = self._relays[loop] = (relays[0] if len(relays) == 1
                                          else ShardedRelay(relays))
        return relay


_runtimes: dict[tuple[AppSpec, float | None], RayRuntime] = {}
_lock = threading.Lock()


def runtime_for(spec: AppSpec, deadline: float | None = None) -> RayRuntime:
    """One runtime (actor handles) per app and ``deadline`` per process; looking actors up
    costs a GCS call."""
    rt = _runtimes.get((spec, deadline))
    if rt is None:
        with _lock:
            rt = _runtimes.get((spec, deadline))
            if rt is None:
                rt = _runtimes[spec, deadline] = RayRuntime(spec, deadline)
    return rt


def forget(spec: AppSpec) -> None:
    """Drop cached handles (after the app's actors were replaced)."""
    for key in [k for k in _runtimes if k[0] == spec]:
        _runtimes.pop(key, None)
