"""The workbench's telemetry store, Ray-free: log filters, long polls, trace summaries."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from raypipe.engine.delivery import Delivery
from raypipe.runtime import bridge
from raypipe.runtime.bridge import TelemetryClient
from raypipe.telemetry import AttemptSpans, Telemetry
from raypipe.trigger_kind import TriggerKind


def line(msg: str, trace: str = "t1", step: str = "a", level: str = "info",
         flows: tuple[str, ...] = ("f",)) -> dict[str, object]:
    return {"time": 1.0, "msg": msg, "trace_id": trace, "step": step, "level": level,
            "flows": list(flows), "fields": {}}


def test_logs_filter_by_trace_prefix_step_level_and_flow() -> None:
    t = Telemetry()
    t.record([line("1"), line("2", trace="t2", step="b", level="error", flows=("g",))], [])
    assert [x["msg"] for x in t.logs(0, {"trace": "t2"})[1]] == ["2"]
    assert [x["msg"] for x in t.logs(0, {"step": "a"})[1]] == ["1"]
    assert [x["msg"] for x in t.logs(0, {"level": "error"})[1]] == ["2"]
    assert [x["msg"] for x in t.logs(0, {"flow": "g"})[1]] == ["2"]
    seq, lines = t.logs(1)
    assert seq == 2 and [x["msg"] for x in lines] == ["2"]


def test_old_lines_and_traces_are_forgotten_first() -> None:
    t = Telemetry(max_lines=3, max_traces=2)
    t.record([line(str(i)) for i in range(5)], [])
    assert [x["msg"] for x in t.logs()[1]] == ["2", "3", "4"]
    for trace in ("x", "y", "z"):
        t.record([], [{"trace_id": trace, "id": "d", "step": "s", "attempt": 1, "start": 1.0,
                       "end": 2.0, "outcome": "ok"}])
    assert [s["trace_id"] for s in t.traces()] == ["z", "y"]


async def test_a_long_poll_returns_when_a_line_arrives() -> None:
    t = Telemetry()
    waiter = asyncio.create_task(t.wait_logs(0, None, 5.0))
    await asyncio.sleep(0.05)
    t.record([line("late")], [])
    seq, lines = await asyncio.wait_for(waiter, 1.0)
    assert seq == 1 and lines[0]["msg"] == "late"


def test_an_attempt_recorded_at_start_and_end_is_one_span() -> None:
    t = Telemetry()
    start = {"trace_id": "t", "id": "d1", "step": "s", "attempt": 1, "start": 10.0,
             "end": None, "outcome": None}
    t.record([], [start])
    assert t.traces()[0]["outcome"] == "running"
    t.record([], [{**start, "end": 30.0, "outcome": "error", "error": "boom"},
                  {**start, "attempt": 2, "start": 40.0, "end": 50.0, "outcome": "ok"}])
    [summary] = t.traces()
    assert summary["outcome"] == "ok" and summary["spans"] == 2  # retried to success
    assert summary["duration"] == 40.0
    trace = t.trace("t")
    assert trace is not None
    assert [(s["attempt"], s["outcome"]) for s in trace["spans"]] == [(1, "error"), (2, "ok")]


def test_a_huge_trace_keeps_its_first_spans_and_counts_the_rest() -> None:
    t = Telemetry(max_spans=3)
    for i in range(5):
        span = {"trace_id": "t", "id": f"d{i}", "step": "s", "attempt": 1, "start": float(i),
                "end": None, "outcome": None}
        t.record([], [span, {**span, "end": i + 1.0, "outcome": "ok"}])
    trace = t.trace("t")
    assert trace is not None
    assert [s["id"] for s in trace["spans"]] == ["d0", "d1", "d2"]
    assert trace["dropped_spans"] == 2


def test_a_workers_timing_joins_its_attempts_span_in_either_order() -> None:
    """The engine's span holds the wait for a worker; the worker says when the handler ran."""
    from raypipe.telemetry import Telemetry

    def span(**extra: object) -> dict[str, object]:
        return {"trace_id": "t", "id": "d", "attempt": 1, **extra}

    for order in ("engine first", "worker first"):
        tm = Telemetry()
        engine = [span(step="s", kind="queue", start=1000.0, end=None, outcome=None)]
        worker = [span(run_start=1400.0, run_end=1500.0)]
        done = [span(step="s", kind="queue", start=1000.0, end=1510.0, outcome="ok")]
        batches = [engine, worker, done] if order == "engine first" else [worker, engine, done]
        for batch in batches:
            tm.record((), batch)
        trace = tm.trace("t")
        assert trace is not None
        [s] = trace["spans"]
        assert (s["queued_ms"], s["run_ms"], s["end"]) == (400.0, 100.0, 1510.0), order
        assert tm.traces()[0]["duration"] == 510.0
    lonely = Telemetry()
    lonely.record((), [span(run_start=1.0, run_end=2.0)])
    assert lonely.traces() == []  # a worker's timing alone is not a span yet


def _delivery(i: int, trace: str = "t", attempt: int = 1) -> Delivery:
    return Delivery(id=f"d{i}", step="s", kind=TriggerKind.QUEUE, payload={}, trace_id=trace,
                    topic="x", attempt=attempt)


class _StoreSink:
    """Where a test's AttemptSpans send: what was sent, and the telemetry actor's store."""

    def __init__(self, max_spans: int) -> None:
        self.sent: list[dict[str, object]] = []
        self.store = Telemetry(max_spans=max_spans)

    def record(self, lines: object, spans: list[dict[str, object]]) -> None:
        self.sent.extend(spans)
        self.store.record((), spans)


def test_past_its_budget_a_trace_is_sent_only_its_failures_and_a_count() -> None:
    """The dispatcher's spans: a 10,000-step fan-out sends its first attempts, then only
    those that fail, and the number it left out; the actor shows exactly that."""
    sink = _StoreSink(max_spans=3)
    sent, store = sink.sent, sink.store
    spans = AttemptSpans(lambda: sink, max_spans=3)
    for i in range(6):
        spans.started("s", _delivery(i))
    for i in range(6):
        spans.finished(_delivery(i), "error" if i == 4 else "ok", "boom" if i == 4 else None)
    spans.started("s", _delivery(4, attempt=2))  # its retry: past the budget, and it passes
    spans.finished(_delivery(4, attempt=2), "ok", None)
    assert [(s.get("id"), s.get("outcome")) for s in sent] == [
        ("d0", None), ("d1", None), ("d2", None),
        ("d0", "ok"), ("d1", "ok"), ("d2", "ok"),
        (None, None), ("d4", "error"), (None, None), (None, None)]
    assert [s["dropped"] for s in sent if "dropped" in s] == [1, 1, 1]
    trace = store.trace("t")
    assert trace is not None
    assert [(s["id"], s["outcome"]) for s in trace["spans"]] == [
        ("d0", "ok"), ("d1", "ok"), ("d2", "ok"), ("d4", "error")]
    assert trace["dropped_spans"] == 3  # d3, d5 and d4's passing retry
    assert store.traces()[0]["outcome"] == "error"


def test_a_workers_timing_of_an_attempt_left_out_is_not_counted_again() -> None:
    t = Telemetry(max_spans=1)
    t.record((), [{"trace_id": "t", "id": "d0", "attempt": 1, "start": 1.0, "end": 2.0,
                   "outcome": "ok"}])
    t.record((), [{"trace_id": "t", "id": "d1", "attempt": 1, "run_start": 1.0, "run_end": 2.0},
                  {"trace_id": "t", "dropped": 1}])
    trace = t.trace("t")
    assert trace is not None and trace["dropped_spans"] == 1


class _Handle:
    """The telemetry actor's handle, as the client uses it: only ``record.remote``."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list[dict[str, object]]]] = []
        self.sent = threading.Event()
        handle = self

        class record:
            @staticmethod
            def remote(lines: object, spans: list[dict[str, object]]) -> None:
                handle.calls.append((lines, spans))
                handle.sent.set()

        self.record = record


def test_the_telemetry_client_sends_an_attempts_records_merged_and_counts_added() -> None:
    handle = _Handle()
    # A first send, then records that arrive within the interval (an hour here: the test
    # sends the rest itself), merged.
    client = TelemetryClient(handle, interval=3600)
    client.record([{"msg": "first"}], [])
    assert handle.sent.wait(30)
    start = {"trace_id": "t", "id": "d0", "attempt": 1, "start": 1.0, "end": None}
    client.record((), [start, {"trace_id": "t", "dropped": 1}])
    client.record((), [{**start, "end": 2.0, "outcome": "ok"},
                       {"trace_id": "t", "dropped": 1}, {"trace_id": "t", "dropped": 1}])
    client.flush()  # what its thread does once the interval has passed
    client.flush()  # nothing left: nothing sent
    assert handle.calls == [([{"msg": "first"}], []),
                            ([], [{**start, "end": 2.0, "outcome": "ok"},
                                  {"trace_id": "t", "dropped": 3}])]


def test_the_telemetry_client_sends_on_its_own_and_at_most_once_an_interval() -> None:
    handle = _Handle()
    client = TelemetryClient(handle, interval=0.2)
    # Nothing else runs in this process: the client's thread sends the records (a task
    # worker between tasks, an idle actor), the first at once.
    client.record([{"msg": "alone"}], [])
    assert handle.sent.wait(30)
    assert handle.calls == [([{"msg": "alone"}], [])]
    # A flood: 2,000 records over at least 0.6 s go in a few calls, none lost, in order.
    began = time.monotonic()
    for i in range(2000):
        client.record([{"msg": str(i)}], [])
        if i % 100 == 0:
            time.sleep(0.03)
    flooded = time.monotonic() - began
    while sum(len(lines) for lines, _ in handle.calls) < 2001:  # type: ignore[arg-type]
        assert time.monotonic() - began < 60, "the client's thread did not send the rest"
        time.sleep(0.01)
    sent = [line["msg"] for lines, _ in handle.calls[1:] for line in lines]  # type: ignore[attr-defined]
    assert sent == [str(i) for i in range(2000)]
    assert len(handle.calls) - 1 <= flooded / 0.2 + 2


def test_the_telemetry_clients_thread_ends_when_idle_and_a_new_record_starts_another(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A client no one records to any more (an app's version before a reload) keeps no thread.
    monkeypatch.setattr(bridge, "SENDER_IDLE_S", 0.05)
    handle = _Handle()
    client = TelemetryClient(handle, interval=0.01)
    client.record([{"msg": "one"}], [])
    began = time.monotonic()
    while client._sender is not None:  # set so by the thread as it ends
        assert time.monotonic() - began < 30, "the idle thread did not end"
        time.sleep(0.01)
    assert handle.calls == [([{"msg": "one"}], [])]
    handle.sent.clear()
    client.record([{"msg": "two"}], [])
    assert handle.sent.wait(30)
    assert handle.calls == [([{"msg": "one"}], []), ([{"msg": "two"}], [])]


def test_the_attempts_left_out_are_counted_together_and_sent_once_none_is_open() -> None:
    sink = _StoreSink(max_spans=1)
    sent, store = sink.sent, sink.store
    spans = AttemptSpans(lambda: sink, max_spans=1)
    began = time.monotonic()
    for i in range(102):
        spans.started("s", _delivery(i))
    for i in range(1, 101):  # d0 (sent in full) and d101 stay open
        spans.finished(_delivery(i), "ok", None)
    counts = [s["dropped"] for s in sent if "dropped" in s]
    # The first count goes at once, the rest together (a few times a second while attempts
    # are open, and once none is).
    assert len(counts) <= 2 + (time.monotonic() - began) / 0.2
    spans.finished(_delivery(0), "ok", None)
    spans.finished(_delivery(101), "ok", None)
    counts = [s["dropped"] for s in sent if "dropped" in s]
    assert sum(counts) == 101  # type: ignore[arg-type]
    trace = store.trace("t")
    assert trace is not None and trace["dropped_spans"] == 101
    assert [(s["id"], s["outcome"]) for s in trace["spans"]] == [("d0", "ok")]
