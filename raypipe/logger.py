"""``ctx.logger``: structured log lines tagged with step, flow and trace id."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ConsoleFormatter", "JsonLinesFormatter", "LogRecord", "StepLogger", "add_sink",
           "configure_console"]

LogRecord = dict[str, Any]
_sinks: list[Callable[[LogRecord], None]] = []
_py_logger = logging.getLogger("raypipe.steps")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR}


def add_sink(sink: Callable[[LogRecord], None]) -> None:
    """Also send every record to ``sink`` (the workbench's live log uses this)."""
    _sinks.append(sink)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rec: LogRecord = getattr(record, "raypipe", {})
        if not rec:
            return super().format(record)
        stamp = time.strftime("%H:%M:%S", time.localtime(rec["time"] / 1000))
        fields = " ".join(f"{k}={v!r}" for k, v in rec.get("fields", {}).items())
        trace = (rec.get("trace_id") or "")[:8]
        return (f"{stamp} {rec['level'].upper():5} [{rec.get('step') or '-'}] {rec['msg']}"
                f"{' ' + fields if fields else ''}  trace={trace}")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: the record as the workbench keeps it (time in ms, level,
    msg, step, trace_id, flows, fields)."""

    def format(self, record: logging.LogRecord) -> str:
        rec: LogRecord = getattr(record, "raypipe", {}) or {
            "time": record.created * 1000, "level": record.levelname.lower(),
            "msg": record.getMessage(), "logger": record.name}
        return json.dumps(rec, default=str, ensure_ascii=False)


def configure_console(level: int = logging.INFO, *, json_lines: bool = False,
                      file: str | None = None) -> None:
    """Write step logs once per process: on stderr (Ray forwards workers' to the driver) or
    appended to ``file``; as text or as JSON lines (the ``log_format`` setting)."""
    if any(getattr(h, "_raypipe", False) for h in _py_logger.handlers):
        return
    handler: logging.Handler = (logging.FileHandler(file, encoding="utf-8") if file
                                else logging.StreamHandler())
    handler.setFormatter(JsonLinesFormatter() if json_lines else ConsoleFormatter())
    handler._raypipe = True  # type: ignore[attr-defined]
    _py_logger.addHandler(handler)
    _py_logger.setLevel(level)
    _py_logger.propagate = False


class StepLogger:
    """``logger.info("Processing", workflowId=wid)``; a dict as second argument also works,
    as in Motia (``logger.info("Processing", {"workflowId": wid})``)."""

    def __init__(self, step: str | None, trace_id: str, flows: tuple[str, ...] = (),
                 sink: Callable[[LogRecord], None] | None = None, *, json_lines: bool = False,
                 file: str | None = None) -> None:
        self.step = step
        self.trace_id = trace_id
        self.flows = flows
        self._sink = sink
        self._output = (json_lines, file)

    def _log(self, level: str, message: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        merged: dict[str, Any] = {}
        for a in args:
            if isinstance(a, Mapping):
                merged.update(a)
            else:
                merged.setdefault("args", []).append(a)
        merged.update(fields)
        rec: LogRecord = {"time": time.time() * 1000, "level": level, "msg": str(message),
                          "step": self.step, "trace_id": self.trace_id,
                          "flows": list(self.flows), "fields": merged}
        configure_console(json_lines=self._output[0], file=self._output[1])
        _py_logger.log(_LEVELS[level], message, extra={"raypipe": rec})
        if self._sink is not None:
            self._sink(rec)
        for sink in _sinks:
            sink(rec)

    def debug(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("debug", message, args, fields)

    def info(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("info", message, args, fields)

    def warn(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("warn", message, args, fields)

    warning = warn

    def error(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("error", message, args, fields)
