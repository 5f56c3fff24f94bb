from raypipe import StepConfig, queue

config = StepConfig(
    name="process-workflow-step",
    description="Processes a single step in the parallel workflow",
    triggers=[queue("workflow.step.process")],
    flows=["workflow-orchestration"],
)


async def handler(input, ctx):
    return None
