"""HTTP + fan-out: one order becomes one message per line item."""

from pydantic import BaseModel, Field

from raypipe import ApiRequest, ApiResponse, FlowContext, StepConfig, http


class Line(BaseModel):
    sku: str
    qty: int = Field(gt=0)


class Order(BaseModel):
    customer: str
    lines: list[Line]


async def tag_request(req, ctx, next):
    response = await next()
    response.headers["x-middleware"] = "seen"
    return response


config = StepConfig(
    name="create-order",
    triggers=[http("POST", "/orders/:customer", body_schema=Order, middleware=[tag_request])],
    enqueues=["order.line"],
    flows=["orders"],
)


async def handler(req: ApiRequest, ctx: FlowContext) -> ApiResponse:
    order: Order = req.body
    oid = f"{req.path_params['customer']}-{len(order.lines)}-{ctx.trace_id[:6]}"
    await ctx.state.set("orders", oid, {"lines": len(order.lines), "done": 0,
                                        "trace": ctx.trace_id})
    for i, line in enumerate(order.lines):
        await ctx.enqueue("order.line", {"orderId": oid, "index": i, **line.model_dump()})
    return ApiResponse(202, {"orderId": oid, "traceId": ctx.trace_id})
