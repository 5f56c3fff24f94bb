"""A level condition (true on every change once all tasks are done): fires once per run only
because the trigger's delivery is named after the change that caused it."""

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


def all_done(change: StateTriggerInput) -> bool:
    new = change.new_value or {}
    return bool(new) and new.get("done") == new.get("n")


config = StepConfig(name="finish", triggers=[state(condition=all_done, group_id="runs")],
                    flows=["faults"])


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.update("completions", change.item_id, [{"type": "increment", "path": "n"}])
