"""A Motia 0.x event step, as a dict, with a plain (sync) handler."""

config = {
    "type": "event",
    "name": "NotifyCustomer",
    "description": "0.x shape: subscribes/emits",
    "subscribes": ["order.completed"],
    "emits": [],
    "input": {
        "type": "object",
        "properties": {"orderId": {"type": "string"}},
        "required": ["orderId"],
    },
    "flows": ["orders"],
    "infrastructure": {"queue": {"type": "standard", "maxRetries": 2, "visibilityTimeout": 30}},
}


def handler(input, ctx):
    ctx.logger.info("notifying", orderId=input["orderId"])
    ctx.state.set("notified", input["orderId"], {"attempt": ctx.attempt, "trace": ctx.trace_id})
