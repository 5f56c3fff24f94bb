"""GET /runs/{run}: what the run has done (needs the state backend); GET /ping (needs
nothing): what answers while Redis is down."""

from raypipe import ApiRequest, ApiResponse, FlowContext, StepConfig, http

config = StepConfig(name="run-status", triggers=[http("GET", "/runs/{run}"), http("GET", "/ping")],
                    flows=["faults"])


async def handler(req: ApiRequest, ctx: FlowContext) -> ApiResponse:
    if "run" not in req.path_params:
        return ApiResponse(200, {"pong": True})
    run = await ctx.state.get("runs", req.path_params["run"])
    return ApiResponse(200 if run else 404, run or {"error": "no such run"})
