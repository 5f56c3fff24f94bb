"""Step 1: start a workflow and fan out one message per parallel task."""

import asyncio
import random
import time
import uuid

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class StartBody(BaseModel):
    totalSteps: int = 5
    waitTime: bool = False
    waitTimeMin: float = 1000
    waitTimeMax: float = 3000


class StartResponse(BaseModel):
    message: str
    workflowId: str
    totalSteps: int


config = StepConfig(
    name="start-parallel-workflow",
    description="Initiates a parallel workflow with multiple tasks",
    triggers=[
        http("POST", "/api/workflow/start", body_schema=StartBody,
             response_schema={200: StartResponse}),
    ],
    enqueues=["workflow.step.process"],
    flows=["workflow-orchestration"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    body: StartBody = request.body
    workflow_id = str(uuid.uuid4())
    ctx.logger.info("Starting parallel workflow", workflowId=workflow_id,
                    totalSteps=body.totalSteps)

    await ctx.state.set("workflows", workflow_id, {
        "totalSteps": body.totalSteps,
        "startedAt": int(time.time() * 1000),
        "completedSteps": 0,
        "steps": {},
    })

    def wait_time() -> float | None:
        if not body.waitTime:
            return None
        return body.waitTimeMin + random.random() * (body.waitTimeMax - body.waitTimeMin)

    await asyncio.gather(*(
        ctx.enqueue("workflow.step.process", {
            "workflowId": workflow_id,
            "stepIndex": i,
            "waitTime": wait_time(),
            "timestamp": int(time.time() * 1000),
        })
        for i in range(body.totalSteps)
    ))

    ctx.logger.info("Parallel workflow started", workflowId=workflow_id, steps=body.totalSteps)
    return {
        "status": 200,
        "body": {
            "message": "Workflow started successfully",
            "workflowId": workflow_id,
            "totalSteps": body.totalSteps,
        },
    }
