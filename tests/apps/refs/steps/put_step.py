"""An HTTP step that puts a value itself: no delivery holds it, the grace period does."""

from raypipe import StepConfig, http

config = StepConfig(name="put-direct", triggers=[http("POST", "/refs/direct")],
                    enqueues=["refs.sink"])


async def handler(req, ctx):
    ref = await ctx.put(bytes(req.body["text"], "utf-8"))
    await ctx.enqueue("refs.sink", {"id": req.body["id"], "ref": ref, "sha": None,
                                    "keep": False})
    return {"status": 202, "body": {"ref": ref}}
