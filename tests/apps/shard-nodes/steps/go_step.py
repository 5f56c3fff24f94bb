"""POST /go {n}: ``n`` messages of "work", each in its own shard by its id."""

from raypipe import StepConfig, http

config = StepConfig(name="go", triggers=[http("POST", "/go")], enqueues=["work"])


async def handler(req, ctx):
    for i in range(int(req.body["n"])):
        await ctx.enqueue("work", {"i": i})
    return {"status": 202, "body": {}}
