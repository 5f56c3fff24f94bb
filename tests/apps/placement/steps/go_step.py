from raypipe import StepConfig, http

config = StepConfig(name="go", triggers=[http("POST", "/go")],
                    enqueues=["gpu.work", "tagged.work", "any.work"])


async def handler(req, ctx):
    for i in range(int(req.body["n"])):
        for topic in ("gpu.work", "tagged.work", "any.work"):
            await ctx.enqueue(topic, {"i": i})
    return {"status": 202, "body": {}}
