"""20% of attempts fail at random, before or after the handler's effect."""

import random

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="chaos", triggers=[queue("chaos", config=QueueConfig(
    max_retries=3, backoff="fixed", backoff_delay_ms=10))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    if random.random() < 0.1:
        raise RuntimeError("before the effect")
    await ctx.state.update("chaos", str(msg["i"]), [{"type": "increment", "path": "n"}])
    if random.random() < 0.1:
        raise RuntimeError("after the effect")
