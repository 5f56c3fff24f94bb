"""Process one task of a stream workflow; its progress is pushed to every subscriber."""

import asyncio
import random

from pydantic import BaseModel

from raypipe import FlowContext, StepConfig, queue


class StreamStep(BaseModel):
    workflowId: str
    stepIndex: int


config = StepConfig(
    name="process-stream-workflow-step",
    description="Processes a step of a stream workflow",
    triggers=[queue("workflow.stream.step.process", input=StreamStep)],
    flows=["workflow-orchestration"],
)


async def handler(input: StreamStep, ctx: FlowContext) -> None:
    await asyncio.sleep(random.uniform(0.1, 0.5))  # the work
    await ctx.streams.workflows.update("active-workflows", input.workflowId, [
        {"type": "increment", "path": "completedSteps", "by": 1},
    ])
    ctx.logger.info("Stream step completed", workflowId=input.workflowId,
                    stepIndex=input.stepIndex)
