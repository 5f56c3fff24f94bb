"""Cron with seconds: fires every second."""

from raypipe import FlowContext, StepConfig, cron

config = StepConfig(name="tick", triggers=[cron("* * * * * *")], flows=["cron"])


async def handler(_: None, ctx: FlowContext) -> None:
    await ctx.state.update("ticks", "all", [{"type": "increment", "path": "n"},
                                            {"type": "append", "path": "traces",
                                             "value": ctx.trace_id}])
