from raypipe import StepConfig, state

config = StepConfig(
    name="workflow-completion",
    description="Handles workflow completion when all steps finish",
    triggers=[state(condition=lambda change: True)],
    enqueues=["workflow.completed"],
    flows=["workflow-orchestration"],
)


async def handler(change, ctx):
    return None
