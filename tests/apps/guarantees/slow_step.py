"""Overruns its visibility_timeout on attempt 1 (cancelled), finishes on attempt 2."""

import time

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="slow", triggers=[queue("slow", config=QueueConfig(
    visibility_timeout=1.0, max_retries=1, backoff_delay_ms=10))])


def handler(msg: dict, ctx: FlowContext) -> None:
    ctx.state.update("slow", msg["id"], [{"type": "append", "path": "started",
                                          "value": ctx.attempt}])
    if ctx.attempt == 1:
        time.sleep(10)  # a blocking call: only cancelling the worker stops it
    ctx.state.update("slow", msg["id"], [{"type": "set", "path": "done", "value": ctx.attempt}])
