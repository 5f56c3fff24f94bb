"""Enqueues a topic it did not declare, and one with an invalid message: both must raise."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(name="misuse", triggers=[http("POST", "/misuse/{kind}")],
                    enqueues=["order.line"])


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    try:
        if req.path_params["kind"] == "undeclared":
            await ctx.enqueue("not.declared", {})
        else:
            await ctx.enqueue("order.line", {"orderId": "x", "index": "NaN"})
    except Exception as exc:
        return {"status": 400, "body": {"error": type(exc).__name__, "message": str(exc)}}
    return {"status": 200, "body": {"error": None}}
