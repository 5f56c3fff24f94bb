"""HTTP access to state for the tests: GET /state/{group}/{key}, GET /state/{group}."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(name="read-state", triggers=[http("GET", "/state/{group}/{key}")])


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    value = await ctx.state.get(req.path_params["group"], req.path_params["key"])
    return {"status": 200 if value is not None else 404, "body": value}
