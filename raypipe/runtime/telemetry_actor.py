"""The telemetry actor: recent log lines and trace spans of an app, for the workbench."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from raypipe.runtime.spec import AppSpec
from raypipe.telemetry import LogFilter, Span, Telemetry


# Live-log readers keep a long poll open each.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0,  # type: ignore[call-overload]
            max_concurrency=1_000)
class TelemetryActor:
    def __init__(self, spec: AppSpec) -> None:
        self.telemetry = Telemetry()

    async def ready(self) -> bool:
        return True

    async def reload(self, spec: AppSpec) -> str:
        return spec.version  # nothing of the app's code runs here

    async def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None:
        self.telemetry.record(lines, spans)

    async def logs(self, after: int, flt: LogFilter, timeout: float,
                   limit: int) -> tuple[int, list[dict[str, Any]]]:
        return await self.telemetry.wait_logs(after, flt, timeout, limit)

    async def traces(self, limit: int) -> list[dict[str, Any]]:
        return self.telemetry.traces(limit)

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        return self.telemetry.trace(trace_id)
