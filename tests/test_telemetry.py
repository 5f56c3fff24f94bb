"""The workbench's telemetry store, Ray-free: log filters, long polls, trace summaries."""

from __future__ import annotations

import asyncio

from raypipe.telemetry import Telemetry


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
