from raypipe import StepConfig, queue

from .arrays import digest, make

config = StepConfig(name="make", triggers=[queue("refs.make")], enqueues=["refs.hop"])


async def handler(msg, ctx):
    arr = make(msg["seed"], msg["mb"])
    ref = await ctx.put(arr)
    await ctx.enqueue("refs.hop", {"id": msg["id"], "ref": ref, "sha": digest(arr),
                                   "keep": msg.get("keep", False)})
