"""The telemetry actor: a Ray shell over :class:`~raypipe.telemetry.TelemetryService` (recent
log lines and trace spans of an app, for the workbench)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from raypipe.runtime import gc_tuning
from raypipe.runtime.spec import AppSpec
from raypipe.telemetry import Span, TelemetryService


# Live-log readers keep a long poll open each.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0,  # type: ignore[call-overload]
            max_concurrency=1_000)
class TelemetryActor(TelemetryService):
    def __init__(self, spec: AppSpec) -> None:
        super().__init__()
        gc_tuning.settle()

    async def ready(self) -> bool:
        return True

    async def record(self, lines: Sequence[dict[str, Any]], spans: Sequence[Span]) -> None:
        """What every process's TelemetryClient sends, in batches, unawaited."""
        self.add(lines, spans)

    async def reload(self, spec: AppSpec) -> str:
        return spec.version  # nothing of the app's code runs here
