"""Topology only: the parallel-workflow example's steps as they were, for exact flow tests."""

from raypipe import StepConfig, http

config = StepConfig(
    name="start-parallel-workflow",
    description="Initiates a parallel workflow with multiple tasks",
    triggers=[http("POST", "/api/workflow/start")],
    enqueues=["workflow.step.process"],
    flows=["workflow-orchestration"],
)


async def handler(request, ctx):
    return None
