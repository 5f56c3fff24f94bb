from __future__ import annotations

import logging
from typing import Any

from raypipe.logger import ConsoleFormatter, StepLogger, add_sink, configure_console


def test_records_carry_step_trace_and_fields() -> None:
    records: list[dict[str, Any]] = []
    add_sink(records.append)
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(ConsoleFormatter())
    handler.emit = lambda r: lines.append(handler.format(r))  # type: ignore[method-assign]
    logging.getLogger("raypipe.steps").addHandler(handler)
    log = StepLogger("process-step", "abcdef1234567890", ("orders",))
    log.info("Processing", {"workflowId": "w1"}, stepIndex=3)
    log.warn("Careful")
    log.error("Broke", error="boom")
    assert [r["level"] for r in records[-3:]] == ["info", "warn", "error"]
    rec = records[-3]
    assert rec["step"] == "process-step" and rec["trace_id"] == "abcdef1234567890"
    assert rec["flows"] == ["orders"]
    assert rec["fields"] == {"workflowId": "w1", "stepIndex": 3}
    logging.getLogger("raypipe.steps").removeHandler(handler)
    assert lines[0].endswith(
        "INFO  [process-step] Processing workflowId='w1' stepIndex=3  trace=abcdef12")
    assert "ERROR [process-step] Broke error='boom'" in lines[2]


def test_console_handler_is_installed_once() -> None:
    configure_console()
    configure_console()
    handlers = [h for h in logging.getLogger("raypipe.steps").handlers
                if getattr(h, "_raypipe", False)]
    assert len(handlers) == 1
