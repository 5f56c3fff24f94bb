from raypipe import StepConfig, http

config = StepConfig(
    name="get-workflow",
    description="Returns a workflow's state",
    triggers=[http("GET", "/api/workflow/{workflowId}")],
    flows=["workflow-orchestration"],
)


async def handler(request, ctx):
    return None
