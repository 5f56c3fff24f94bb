"""Its first run kills its own worker process (SIGKILL) mid-handler."""

import os
import signal

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="killer", triggers=[queue("killer")])


async def handler(msg: dict, ctx: FlowContext) -> None:
    if not await ctx.state.get("killed", msg["id"]):
        await ctx.state.set("killed", msg["id"], os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
    await ctx.state.set("survived", msg["id"], os.getpid())
