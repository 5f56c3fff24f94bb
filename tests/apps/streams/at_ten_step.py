"""A stream trigger: counts how often an item reached n == 10 by an update."""

from raypipe import FlowContext, StepConfig, StreamTriggerInput, stream


def reached_ten(change: StreamTriggerInput) -> bool:
    return change.event.type == "update" and change.event.data["n"] == 10


config = StepConfig(name="at-ten", triggers=[stream("items", group_id="counted",
                                                    condition=reached_ten)])


async def handler(change: StreamTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.update("at-ten", change.id, [{"type": "increment", "path": "fired"}])
