"""Starts a job: one message per image (its seed and size) to the embed step."""

import uuid

from pydantic import BaseModel, Field

from raypipe import ApiRequest, FlowContext, StepConfig, http


class JobRequest(BaseModel):
    images: int = Field(default=100, ge=1, le=100_000)
    size: int = Field(default=64, ge=32, le=512)


config = StepConfig(
    name="start-job",
    triggers=[http("POST", "/jobs", body_schema=JobRequest)],
    enqueues=["image.ready"],
    flows=["images"],
)


async def handler(request: ApiRequest[JobRequest], ctx: FlowContext) -> dict:
    job = uuid.uuid4().hex[:12]
    n, size = request.body.images, request.body.size
    await ctx.state.set("jobs", job, {"total": n, "done": 0, "status": "running"})
    await ctx.streams.jobs.set("all", job, {"total": n, "done": 0, "status": "running"})
    for i in range(n):
        ctx.enqueue("image.ready", {"job": job, "index": i, "size": size})
    return {"status": 202, "body": {"jobId": job, "images": n}}
