"""Fails until the flag ("flags", "fixed") is set: dead-lettered, then replayed."""

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="doomed", triggers=[queue("doomed", config=QueueConfig(
    max_retries=2, backoff="fixed", backoff_delay_ms=20))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    if not await ctx.state.get("flags", "fixed"):
        raise ValueError(f"not fixed yet (attempt {ctx.attempt})")
    await ctx.state.set("doomed-done", msg["id"], ctx.attempt)
