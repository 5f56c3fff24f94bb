"""Read a workflow's state: progress while it runs, aggregated results once completed."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(
    name="get-workflow",
    description="Returns a workflow's state",
    triggers=[http("GET", "/api/workflow/{workflowId}")],
    flows=["workflow-orchestration"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    workflow_id = request.path_params["workflowId"]
    workflow = await ctx.state.get("workflows", workflow_id)
    if workflow is None:
        return {"status": 404, "body": {"error": f"workflow {workflow_id} not found"}}
    return {"status": 200, "body": {"workflowId": workflow_id, "status": "running", **workflow}}
