from raypipe import StepConfig, http

config = StepConfig(name="get", triggers=[http("GET", "/runs/{run}")])


async def handler(req, ctx):
    return await ctx.state.get("runs", req.path_params["run"]) or {"status": 404, "body": {}}
