from raypipe import StepConfig, http

config = StepConfig(name="placed", triggers=[http("GET", "/placed/{step}")])


async def handler(req, ctx):
    return await ctx.state.get("placed", req.path_params["step"]) or {}
