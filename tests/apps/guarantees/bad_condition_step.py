from raypipe import FlowContext, StepConfig, queue


def broken(msg: dict) -> bool:
    raise KeyError("the condition has a bug")


config = StepConfig(name="bad-condition", triggers=[queue("cond", condition=broken)])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.set("cond", "ran", True)
