from raypipe import StepConfig, http

config = StepConfig(name="read", triggers=[http("GET", "/refs/{id}"),
                                           http("DELETE", "/refs/{id}")])


async def handler(req, ctx):
    rid = req.path_params["id"]
    if req.method == "DELETE":
        await ctx.state.delete("refs", rid)
        return {"status": 204}
    record = await ctx.state.get("refs", rid)
    return {"status": 200, "body": record} if record else {"status": 404, "body": {}}
