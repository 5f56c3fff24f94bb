"""State trigger with an async condition; counts how often it fires."""

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


async def order_complete(change: StateTriggerInput) -> bool:
    # A level condition, as in Motia's seed: true for every change once all lines are done.
    new = change.new_value or {}
    return new.get("done") == new.get("lines")


config = StepConfig(
    name="order-complete",
    triggers=[state(condition=order_complete, group_id="orders")],
    enqueues=["order.completed"],
    flows=["orders"],
)


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    await ctx.state.update("completions", change.item_id, [
        {"type": "increment", "path": "count"},
        {"type": "set", "path": "trace", "value": ctx.trace_id},
    ])
    await ctx.enqueue("order.completed", {"orderId": change.item_id})
