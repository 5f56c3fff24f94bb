import time

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="delayed", triggers=[queue("delayed", config=QueueConfig(
    delay_seconds=1.0))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.set("delayed", msg["id"], time.time())
