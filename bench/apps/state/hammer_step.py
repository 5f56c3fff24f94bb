"""POST /hammer {handlers, updates}: `handlers` deliveries run at once, each making `updates`
atomic increments of one shared item, one after another."""

import asyncio
import time
import uuid

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http, queue


class Hammer(BaseModel):
    handlers: int
    updates: int


config = StepConfig(name="hammer", triggers=[http("POST", "/hammer", body_schema=Hammer),
                                             queue("bench.hammer")],
                    enqueues=["bench.hammer"])


async def handler(req, ctx: FlowContext):
    if isinstance(req, ApiRequest):
        run = uuid.uuid4().hex
        body: Hammer = req.body
        await ctx.state.set("hammer", run, {"n": 0, "total": body.handlers * body.updates,
                                            "started": time.time()})
        await asyncio.gather(*(ctx.enqueue("bench.hammer", {"run": run, "updates": body.updates})
                               for _ in range(body.handlers)))
        return {"status": 200, "body": {"run": run}}
    for _ in range(req["updates"]):
        await ctx.state.update("hammer", req["run"], [{"type": "increment", "path": "n"}])
