import time

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


def all_done(change: StateTriggerInput) -> bool:
    new = change.new_value or {}
    return change.group_id == "runs" and new.get("done") == new.get("n")


config = StepConfig(name="fanout-done", triggers=[state(condition=all_done)])


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.set("finished", change.item_id,
                        {"at": time.time(), "sum": change.new_value["sum"]})
