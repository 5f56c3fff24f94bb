"""Starts a job: one message per chunk of images to the load step."""

import uuid

from pydantic import BaseModel, Field

from raypipe import ApiRequest, FlowContext, StepConfig, http

#: Images loaded, and put into the object store, together.
CHUNK = 64


class JobRequest(BaseModel):
    images: int = Field(default=100, ge=1, le=100_000)
    size: int = Field(default=64, ge=32, le=512)


config = StepConfig(
    name="start-job",
    triggers=[http("POST", "/jobs", body_schema=JobRequest)],
    enqueues=["images.load"],
    flows=["images"],
)


async def handler(request: ApiRequest[JobRequest], ctx: FlowContext) -> dict:
    job = uuid.uuid4().hex[:12]
    n, size = request.body.images, request.body.size
    await ctx.state.set("jobs", job, {"total": n, "done": 0, "status": "running"})
    await ctx.streams.jobs.set("all", job, {"total": n, "done": 0, "status": "running"})
    for first in range(0, n, CHUNK):
        ctx.enqueue("images.load", {"job": job, "first": first,
                                    "count": min(CHUNK, n - first), "size": size})
    return {"status": 202, "body": {"jobId": job, "images": n}}
