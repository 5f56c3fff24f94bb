"""A condition that raises: logged and treated as false, never a crash of the state actor."""

from raypipe import FlowContext, StepConfig, state


def explode(change):
    raise RuntimeError("condition bug")


config = StepConfig(name="broken", triggers=[state(condition=explode)])


async def handler(change, ctx: FlowContext) -> None:
    await ctx.state.set("broken-ran", change.item_id, True)
