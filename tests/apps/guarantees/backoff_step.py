"""Fails attempts 1 and 2, succeeds on 3; records when each attempt started."""

import time

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="backoff", triggers=[queue("backoff", config=QueueConfig(
    max_retries=3, backoff="exponential", backoff_delay_ms=300))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    # Each attempt's record is its own effect (distinct keys), so retries keep all of them.
    await ctx.state.set("backoff", f"{msg['id']}:{ctx.attempt}", time.time())
    if ctx.attempt < 3:
        raise RuntimeError(f"attempt {ctx.attempt}")
