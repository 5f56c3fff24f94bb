import asyncio

from raypipe import QueueConfig, StepConfig, queue

#: Which version of this file ran a delivery (a test rewrites it and redeploys).
MARK = "v1"

config = StepConfig(name="work", triggers=[queue("work", config=QueueConfig(concurrency=4))])


async def handler(msg, ctx):
    await asyncio.sleep(0.05)
    await ctx.state.update("runs", msg["run"], [
        {"type": "increment", "path": "done"},
        {"type": "increment", "path": f"by_mark.{MARK}"}])
