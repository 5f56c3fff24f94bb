"""Makes a payload of ``kb`` kilobytes and passes it on by reference."""

import numpy as np

from raypipe import StepConfig, queue

config = StepConfig(name="make", triggers=[queue("p.make")], enqueues=["p.sink"])


async def handler(msg, ctx):
    payload = np.full(msg["kb"] << 10, msg["i"] % 251, dtype=np.uint8)
    await ctx.enqueue("p.sink", {"run": msg["run"], "i": msg["i"],
                                 "payload": await ctx.put(payload)})
