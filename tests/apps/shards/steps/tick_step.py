"""Cron with seconds: each tick counts itself under its due time, so a tick fired twice (by
two shards at once, or again after its owner died) shows as a 2."""

from raypipe import FlowContext, StepConfig, cron

config = StepConfig(name="tick", triggers=[cron("* * * * * *")], flows=["shards"])


async def handler(_: None, ctx: FlowContext) -> None:
    due = ctx._delivery_id.rsplit(":", 1)[-1]  # a tick's delivery is named after its due time
    await ctx.state.update("ticks", "all", [{"type": "increment", "path": f"due.{due}"}])
