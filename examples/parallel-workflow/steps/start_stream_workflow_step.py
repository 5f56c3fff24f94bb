"""Step 4: start a workflow tracked in the `workflows` stream, for real-time progress."""

import asyncio
import time
import uuid

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class StreamStartBody(BaseModel):
    totalSteps: int = 5


config = StepConfig(
    name="start-stream-workflow",
    description="Initiates workflow using streams for real-time tracking",
    triggers=[http("POST", "/api/workflow/stream/start", body_schema=StreamStartBody)],
    enqueues=["workflow.stream.step.process"],
    flows=["workflow-orchestration"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    body: StreamStartBody = request.body
    workflow_id = str(uuid.uuid4())
    ctx.logger.info("Starting stream workflow", workflowId=workflow_id)

    await ctx.streams.workflows.set("active-workflows", workflow_id, {
        "totalSteps": body.totalSteps,
        "startedAt": int(time.time() * 1000),
        "completedSteps": 0,
    })
    await asyncio.gather(*(
        ctx.enqueue("workflow.stream.step.process", {"workflowId": workflow_id, "stepIndex": i})
        for i in range(body.totalSteps)
    ))
    return {"status": 200, "body": {"workflowId": workflow_id, "totalSteps": body.totalSteps}}
