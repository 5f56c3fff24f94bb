"""POST /runs {n, sleep_ms}: one run of ``n`` tasks, all enqueued in one batch."""

import asyncio

from pydantic import BaseModel, Field

from raypipe import ApiRequest, ApiResponse, FlowContext, StepConfig, http


class Run(BaseModel):
    n: int = Field(gt=0)
    sleep_ms: int = 0


config = StepConfig(name="start-run", triggers=[http("POST", "/runs", body_schema=Run)],
                    enqueues=["run.task"], flows=["faults"])


async def handler(req: ApiRequest, ctx: FlowContext) -> ApiResponse:
    run: Run = req.body
    rid = ctx.trace_id[:12]
    await ctx.state.set("runs", rid, {"n": run.n, "done": 0})
    await asyncio.gather(*(ctx.enqueue("run.task", {"run": rid, "i": i, "sleep_ms": run.sleep_ms})
                           for i in range(run.n)))
    return ApiResponse(202, {"run": rid})
