from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="count", triggers=[queue("image.received")])


async def handler(message: dict, ctx: FlowContext) -> None:
    await ctx.state.update("uploads", "count",
                           [{"type": "increment", "path": "files", "by": message["count"]}])
