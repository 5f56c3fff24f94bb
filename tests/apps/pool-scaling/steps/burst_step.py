from typing import Any

from raypipe import FlowContext, StepConfig, http

config = StepConfig(name="burst", triggers=[http("POST", "/burst")], enqueues=["scale.item"])


async def handler(request: Any, ctx: FlowContext) -> dict[str, Any]:
    for i in range(int(request.body["n"])):
        ctx.enqueue("scale.item", {"i": i, "slow": float(request.body["slow"])})
    return {"status": 202, "body": {}}
