"""A queue trigger whose condition takes (input, ctx)."""

from raypipe import FlowContext, StepConfig, queue


def only_even(msg: dict, ctx: FlowContext) -> bool:
    return msg["n"] % 2 == 0 and ctx.trigger is not None


config = StepConfig(name="gated", triggers=[queue("numbers", condition=only_even)])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.set("gated", str(msg["n"]), ctx.trigger.topic)
