"""At most two deliveries in flight; records each one's span."""

import asyncio
import time

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="limited", triggers=[queue("limited", config=QueueConfig(
    concurrency=2))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    start = time.time()
    await asyncio.sleep(0.2)
    await ctx.state.set("limited", str(msg["i"]), [start, time.time()])
