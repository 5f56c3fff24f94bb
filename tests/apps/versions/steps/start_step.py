import uuid

from raypipe import StepConfig, http

config = StepConfig(name="start", triggers=[http("POST", "/runs")], enqueues=["work"])


async def handler(req, ctx):
    run, n = uuid.uuid4().hex, int(req.body["n"])
    await ctx.state.set("runs", run, {"n": n, "done": 0, "by_mark": {}})
    for i in range(n):
        await ctx.enqueue("work", {"run": run, "i": i})
    return {"status": 202, "body": {"run": run}}
