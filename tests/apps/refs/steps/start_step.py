from raypipe import StepConfig, http

config = StepConfig(name="start", triggers=[http("POST", "/refs")], enqueues=["refs.make"])


async def handler(req, ctx):
    await ctx.enqueue("refs.make", req.body)
    return {"status": 202, "body": {"id": req.body["id"]}}
