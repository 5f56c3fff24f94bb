import time

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="chain-hop", triggers=[queue("chain.hop")], enqueues=["chain.hop"])


async def handler(msg: dict, ctx: FlowContext) -> None:
    if msg["left"] > 0:
        await ctx.enqueue("chain.hop", {"run": msg["run"], "left": msg["left"] - 1})
    else:
        await ctx.state.set("chains", msg["run"], {"at": time.time()})
