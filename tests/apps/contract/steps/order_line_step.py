"""Queue step with a schema; records its trace id and fans in with an atomic update."""

from pydantic import BaseModel

from raypipe import FlowContext, StepConfig, queue


class LineMsg(BaseModel):
    orderId: str
    index: int
    sku: str
    qty: int


config = StepConfig(
    name="process-line",
    triggers=[queue("order.line", input=LineMsg)],
    flows=["orders"],
)


async def handler(msg: LineMsg, ctx: FlowContext) -> None:
    await ctx.state.update("orders", msg.orderId, [
        {"type": "increment", "path": "done"},
        {"type": "append", "path": "traces", "value": ctx.trace_id},
        {"type": "set", "path": f"lines_by_index.{msg.index}", "value": msg.sku},
    ])
