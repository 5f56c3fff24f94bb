"""FIFO per message group; every seventh message fails its first attempt."""

import asyncio
import time

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="fifo", triggers=[queue("fifo", config=QueueConfig(
    type="fifo", max_retries=2, backoff="fixed", backoff_delay_ms=10))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    start = time.time()
    await asyncio.sleep(0.005)
    await ctx.state.update("fifo", msg["group"], [
        {"type": "append", "path": "seq", "value": msg["seq"]},
        {"type": "append", "path": "spans", "value": [start, time.time()]},
    ])
    if msg["seq"] % 7 == 3 and ctx.attempt == 1:
        raise RuntimeError("fails once after its effect")
