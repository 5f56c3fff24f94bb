"""Fan-in: when a job's last image lands, the job is complete (in its state and on the
stream)."""

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


def last_image(change: StateTriggerInput) -> bool:
    job = change.new_value or {}
    return job.get("status") == "running" and job.get("done", 0) >= job.get("total", 1)


config = StepConfig(
    name="finish",
    triggers=[state(group_id="jobs", condition=last_image)],
    flows=["images"],
)


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.update("jobs", change.item_id,
                           [{"type": "set", "path": "status", "value": "completed"}])
    await ctx.streams.jobs.update("all", change.item_id,
                                  [{"type": "set", "path": "status", "value": "completed"}])
    ctx.logger.info("job completed", job=change.item_id, images=change.new_value["total"])
