import asyncio
import time
import uuid

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class Start(BaseModel):
    n: int


config = StepConfig(name="fanout-start", triggers=[http("POST", "/fanout", body_schema=Start)],
                    enqueues=["bench.work"])


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    run = uuid.uuid4().hex
    n = req.body.n
    await ctx.state.set("runs", run, {"n": n, "done": 0, "sum": 0, "started": time.time()})
    await asyncio.gather(*(ctx.enqueue("bench.work", {"run": run, "i": i}) for i in range(n)))
    return {"status": 200, "body": {"run": run}}
