"""A yearly cron: never due during a test run, unless a missed tick is caught up."""

from raypipe import FlowContext, StepConfig, cron

config = StepConfig(name="new-year", triggers=[cron("0 0 1 1 *")], flows=["cron"])


async def handler(_: None, ctx: FlowContext) -> None:
    await ctx.state.update("new-year", "all", [{"type": "increment", "path": "n"}])
