"""Records every change of the `watched` group it sees."""

from raypipe import FlowContext, StateTriggerInput, StepConfig, state

config = StepConfig(name="watch", triggers=[state(group_id="watched")])


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.update("seen", change.item_id, [{"type": "append", "path": "events", "value": {
        "type": change.event_type, "old": change.old_value, "new": change.new_value,
        "trace": ctx.trace_id}}])
