"""Step 2: process one task of the workflow, then record it atomically."""

import asyncio
import random
import time

from pydantic import BaseModel

from raypipe import FlowContext, StepConfig, queue


class StepInput(BaseModel):
    workflowId: str
    stepIndex: int
    waitTime: float | None = None
    timestamp: int


config = StepConfig(
    name="process-workflow-step",
    description="Processes a single step in the parallel workflow",
    triggers=[queue("workflow.step.process", input=StepInput)],
    flows=["workflow-orchestration"],
)

WORK_TYPES = ("data_fetch", "computation", "api_call")
WORK_SCALE = {"data_fetch": 100, "computation": 1000, "api_call": 50}


def perform_step_work(step_index: int) -> dict:
    kind = WORK_TYPES[step_index % len(WORK_TYPES)]
    return {
        "type": kind,
        "value": random.random() * WORK_SCALE[kind],
        "stepIndex": step_index,
        "message": f"Step {step_index} completed {kind}",
    }


async def handler(input: StepInput, ctx: FlowContext) -> None:
    ctx.logger.info("Processing workflow step", workflowId=input.workflowId,
                    stepIndex=input.stepIndex)
    if input.waitTime:
        ctx.logger.info(f"Step {input.stepIndex} waiting {input.waitTime:.0f}ms",
                        workflowId=input.workflowId)
        await asyncio.sleep(input.waitTime / 1000)

    result = perform_step_work(input.stepIndex)

    await ctx.state.update("workflows", input.workflowId, [
        {"type": "increment", "path": "completedSteps", "by": 1},
        {"type": "set", "path": f"steps.{input.stepIndex}", "value": {
            "result": result,
            "completedAt": int(time.time() * 1000),
            "duration": input.waitTime,
        }},
    ])
    ctx.logger.info("Workflow step completed", workflowId=input.workflowId,
                    stepIndex=input.stepIndex)
