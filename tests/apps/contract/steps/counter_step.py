"""A hot item: every message increments the same counter."""

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="count", triggers=[queue("counter.incr")], flows=["counter"])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.update("counters", msg.get("key", "c"), [{"type": "increment", "path": "n"}])
