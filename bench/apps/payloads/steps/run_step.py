from raypipe import StepConfig, http

config = StepConfig(name="run", triggers=[http("POST", "/run"), http("GET", "/run/{id}")],
                    enqueues=["p.make"])


async def handler(req, ctx):
    if req.method == "GET":
        return {"status": 200, "body": await ctx.state.get("runs", req.path_params["id"]) or {}}
    body = req.body
    for i in range(body["n"]):
        ctx.enqueue("p.make", {"run": body["run"], "i": i, "kb": body["kb"]})
    return {"status": 202, "body": {}}
