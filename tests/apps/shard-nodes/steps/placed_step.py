from raypipe import StepConfig, http

config = StepConfig(name="placed", triggers=[http("GET", "/placed")])


async def handler(req, ctx):
    return await ctx.state.get("placed", "work") or {}
