"""What the workbench shows of a running app: recent log lines and the spans of recent traces.

Ray-free: the telemetry actor hosts one :class:`Telemetry`. Log lines come from ``ctx.logger``
in every process (workers, Serve replicas), spans from the dispatcher (one per delivery
attempt) and the ingress (one per HTTP step call), each sent in batches without waiting for an
answer. Both are bounded: the oldest lines and traces are forgotten first, and a trace keeps
its first :data:`MAX_SPANS` attempts and the failed ones after them, and counts the rest (a
record ``{"trace_id", "dropped": n}``): :class:`AttemptSpans` does not send those at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from raypipe.engine.delivery import Delivery

__all__ = ["MAX_SPANS", "MAX_TRACES", "AttemptSpans", "LogFilter", "Span", "SpanSink",
           "Telemetry", "TelemetryService", "merged", "span_key"]

#: ``{"trace_id", "id", "step", "kind", "attempt", "start", "end", "outcome", "error", ...}``;
#: times in epoch milliseconds; ``outcome`` is ``ok``, ``error`` or ``dead``.
Span = dict[str, Any]
LogFilter = dict[str, str | None]

#: Attempts a trace keeps (a 10,000-step fan-out keeps its first ones and counts the rest).
MAX_SPANS = 2_000
#: Traces kept, the oldest forgotten first.
MAX_TRACES = 1_000
#: The outcomes of attempts kept beyond :data:`MAX_SPANS`.
_FAILED = frozenset({"error", "dead"})


def span_key(span: Span) -> tuple[Any, Any, Any]:
    """What the records of one attempt share (a count of attempts left out has no ``id``)."""
    return span["trace_id"], span.get("id"), span.get("attempt")


def merged(before: Span | None, span: Span) -> Span:
    """Two records of one key as one: an attempt's later fields win; counts of attempts left
    out add up."""
    if before is None:
        return span
    if "dropped" in span:
        return {**before, "dropped": before["dropped"] + span["dropped"]}
    return {**before, **span}


def _matches(line: dict[str, Any], f: LogFilter) -> bool:
    if f.get("trace") and not str(line.get("trace_id") or "").startswith(str(f["trace"])):
        return False
    if f.get("step") and line.get("step") != f["step"]:
        return False
    if f.get("level") and line.get("level") != f["level"]:
        return False
    return not (f.get("flow") and f["flow"] not in (line.get("flows") or ()))


class Telemetry:
    def __init__(self, max_lines: int = 20_000, max_traces: int = MAX_TRACES,
                 max_spans: int = MAX_SPANS) -> None:
        self._lines: deque[dict[str, Any]] = deque(maxlen=max_lines)
        self._seq = 0
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._dropped: dict[str, int] = {}
        #: Per trace, where each (delivery, attempt) is in its list: an end finds its start.
        self._where: dict[str, dict[tuple[str, Any], int]] = {}
        self._wake = asyncio.Event()

    def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None:
        for line in lines:
            self._seq += 1
            self._lines.append({**line, "seq": self._seq})
        for span in spans:
            trace_id = span["trace_id"]
            if "dropped" in span:  # attempts its sender left out
                if trace_id in self._traces:
                    self._dropped[trace_id] = self._dropped.get(trace_id, 0) + span["dropped"]
                continue
            trace = self._traces.get(trace_id)
            if trace is None:
                trace = self._traces[trace_id] = []
                self._where[trace_id] = {}
                while len(self._traces) > self.max_traces:
                    gone, _ = self._traces.popitem(last=False)
                    self._dropped.pop(gone, None)
                    self._where.pop(gone, None)
            # An attempt is recorded when it starts and again when it ends, and its worker
            # adds when the handler really ran: each record adds to the last.
            where = self._where[trace_id]
            key = (span["id"], span.get("attempt"))
            at = where.get(key)
            if at is not None:
                trace[at] = merged(trace[at], span)
            elif len(trace) < self.max_spans or span.get("outcome") in _FAILED:
                where[key] = len(trace)
                trace.append(span)
            elif "start" in span and span.get("end") is None:  # not a worker's timing alone
                self._dropped[trace_id] = self._dropped.get(trace_id, 0) + 1
        if lines:
            self._wake.set()

    def logs(self, after: int = 0, flt: LogFilter | None = None,
             limit: int = 500) -> tuple[int, list[dict[str, Any]]]:
        """Lines with ``seq > after`` that match ``flt``, oldest first, at most ``limit`` (the
        newest ones); returns ``(last seq, lines)`` for the next call's ``after``."""
        flt = flt or {}
        found = [ln for ln in self._lines if ln["seq"] > after and _matches(ln, flt)]
        return self._seq, found[-limit:]

    async def wait_logs(self, after: int, flt: LogFilter | None, timeout: float,
                        limit: int = 500) -> tuple[int, list[dict[str, Any]]]:
        """``logs``, but waits up to ``timeout`` seconds for a first new line."""
        if self._seq <= after:
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        return self.logs(after, flt, limit)

    def traces(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: each trace's first step, start, duration, span count and outcome
        (``running``, else ``dead`` or ``error`` if a delivery ended so, else ``ok``)."""
        out = []
        for trace_id in reversed(self._traces):
            spans = _whole(self._traces[trace_id])
            if not spans:
                continue
            start = min(s["start"] for s in spans)
            ends = [s["end"] for s in spans if s.get("end") is not None]
            # A delivery's outcome is its last attempt's: one retried to success is ok.
            last: dict[str, Span] = {}
            for s in spans:
                if s["id"] not in last or s.get("attempt", 1) > last[s["id"]].get("attempt", 1):
                    last[s["id"]] = s
            outcomes = {s.get("outcome") for s in last.values()}
            running = any(s.get("end") is None for s in spans)
            first = min(spans, key=lambda s: s["start"])
            outcome = ("running" if running else "dead" if "dead" in outcomes
                       else "error" if "error" in outcomes else "ok")
            out.append({"trace_id": trace_id, "step": first["step"], "start": start,
                        "duration": (max(ends) - start) if ends and not running else None,
                        "spans": len(spans), "steps": sorted({s["step"] for s in spans}),
                        "outcome": outcome})
            if len(out) >= limit:
                break
        return out

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        spans = self._traces.get(trace_id)
        if spans is None:
            return None
        # Workers send their lines in batches: arrival order is not time order.
        lines = sorted((ln for ln in self._lines if ln.get("trace_id") == trace_id),
                       key=lambda ln: ln.get("time", 0))
        return {"trace_id": trace_id, "spans": sorted(map(_timed, _whole(spans)),
                                                      key=lambda s: s["start"]),
                "dropped_spans": self._dropped.get(trace_id, 0), "logs": lines}


def _whole(spans: list[Span]) -> list[Span]:
    """The spans whose attempt's own record came (a worker's timing may come first)."""
    return [s for s in spans if "start" in s]


def _timed(span: Span) -> Span:
    """``queued_ms`` (from the attempt's start to its handler's) and ``run_ms`` (the
    handler's own run), where the worker said when it ran: a span's ``start``/``end`` hold
    the wait for a worker too."""
    if "run_start" not in span:
        return span
    return {**span, "queued_ms": max(0.0, span["run_start"] - span["start"]),
            "run_ms": span["run_end"] - span["run_start"]}


#: How often the counts of attempts left out go to the sink while attempts are open.
DROPPED_EVERY_MS = 200.0


class SpanSink(Protocol):
    def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None: ...


class AttemptSpans:
    """A span per delivery attempt, sent to the sink as the attempt starts and again as it
    ends (the workbench shows a running attempt): what the dispatcher and the in-process
    runtime of :mod:`raypipe.testing` both record.

    Past a trace's first ``max_spans`` attempts, an attempt is sent only if it fails (as it
    ends), and the others are only counted: the telemetry actor keeps no more of a trace than
    that, and a fan-out of 10,000 sent it the 8,000 attempts past them only to be dropped."""

    def __init__(self, sink: Callable[[], SpanSink], *, max_spans: int = MAX_SPANS,
                 max_traces: int = MAX_TRACES) -> None:
        self._sink = sink
        #: Per open attempt: its span, sent as it started; or, for an attempt left out, only
        #: what its span needs should it fail (its step and start): most of a large fan-out's
        #: attempts are left out and pass, and cost no span at all.
        self._open: dict[tuple[str, int], Span | tuple[str, float]] = {}
        #: Per recent trace, the attempts sent as they started.
        self._sent: OrderedDict[str, int] = OrderedDict()
        #: Per trace, the attempts left out and passed since their count was last sent.
        self._dropped: dict[str, int] = {}
        self._dropped_sent = 0.0
        self.max_spans = max_spans
        self.max_traces = max_traces

    def started(self, step: str, d: Delivery) -> None:
        start = time.time() * 1000
        sent = self._sent.get(d.trace_id)
        if sent is None:
            sent = 0
            while len(self._sent) >= self.max_traces:
                self._sent.popitem(last=False)
        if sent >= self.max_spans:
            self._open[d.id, d.attempt] = (step, start)
            return
        span = _span(step, d, start)
        self._open[d.id, d.attempt] = span
        self._sent[d.trace_id] = sent + 1
        self._sink().record((), [span])

    def finished(self, d: Delivery, outcome: str, error: str | None) -> None:
        opened = self._open.pop((d.id, d.attempt), None)
        if opened is None:
            return
        end = time.time() * 1000
        if isinstance(opened, dict):
            # Its start was sent: the end adds to it (the sink and the actor merge by attempt).
            self._sink().record((), [{"trace_id": d.trace_id, "id": d.id, "attempt": d.attempt,
                                      "end": end, "outcome": outcome, "error": error}])
        elif outcome in _FAILED:
            step, start = opened
            self._sink().record((), [{**_span(step, d, start), "end": end, "outcome": outcome,
                                      "error": error}])
        else:
            self._dropped[d.trace_id] = self._dropped.get(d.trace_id, 0) + 1
        # Counts go together, a few times a second, and as soon as no attempt is open.
        if self._dropped and (not self._open or end - self._dropped_sent >= DROPPED_EVERY_MS):
            self._sink().record((), [{"trace_id": t, "dropped": n}
                                     for t, n in self._dropped.items()])
            self._dropped.clear()
            self._dropped_sent = end


def _span(step: str, d: Delivery, start: float) -> Span:
    return {"trace_id": d.trace_id, "id": d.id, "step": step, "kind": d.kind, "topic": d.topic,
            "attempt": d.attempt, "start": start, "end": None, "outcome": None, "error": None}


class TelemetryService:
    """A :class:`Telemetry` behind the calls the workbench's API makes: what the telemetry
    actor hosts, and :mod:`raypipe.testing` in-process."""

    def __init__(self) -> None:
        self.telemetry = Telemetry()

    def add(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None:
        self.telemetry.record(lines, spans)

    async def logs(self, after: int, flt: LogFilter, timeout: float,
                   limit: int) -> tuple[int, list[dict[str, Any]]]:
        return await self.telemetry.wait_logs(after, flt, timeout, limit)

    async def traces(self, limit: int) -> list[dict[str, Any]]:
        return self.telemetry.traces(limit)

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        return self.telemetry.trace(trace_id)
