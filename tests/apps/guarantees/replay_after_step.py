"""Counts the messages the replayable step enqueued."""

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="replay-after", triggers=[queue("replayable.after")])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.update("replay-after", msg["id"], [{"type": "increment", "path": "n"}])
