import time

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


def all_done(change: StateTriggerInput) -> bool:
    new = change.new_value or {}
    return change.group_id == "hammer" and bool(new) and new.get("n") == new.get("total")


config = StepConfig(name="hammer-done", triggers=[state(condition=all_done)])


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.set("hammer-finished", change.item_id, {"at": time.time()})
