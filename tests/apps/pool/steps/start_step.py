"""Fans a run out into N items for the model step."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(name="start", triggers=[http("POST", "/start")], enqueues=["item"])


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    n = int(request.body["n"])
    poison = request.body.get("poison")
    slow = float(request.body.get("slow", 0))
    run = request.body.get("run", "a")
    for i in range(n):
        ctx.enqueue("item", {"i": i, "poison": i == poison, "slow": slow, "run": run})
    return {"status": 202, "body": {"n": n}}
