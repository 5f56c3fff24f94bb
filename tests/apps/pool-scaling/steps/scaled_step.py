"""A pool of 1 to 3 actors whose extra actors go after 2 idle seconds; each batch (one item)
takes ``slow`` seconds, so a burst makes a backlog that the pool grows for."""

import os
import time
from typing import Any

from raypipe import Batch, FlowContext, RayOptions, StepConfig, queue

config = StepConfig(
    name="scaled",
    triggers=[queue("scale.item")],
    ray=RayOptions(actors=(1, 3), idle_s=2.0, num_cpus=0.1,
                   batch=Batch(max_size=1, max_wait_s=0.0)),
)


class Worker:
    async def __call__(self, items: list[Any], ctxs: list[FlowContext]) -> list[Any]:
        for item, ctx in zip(items, ctxs, strict=True):
            time.sleep(item["slow"])
            await ctx.state.update("burst", str(item["i"]), [
                {"type": "increment", "path": "n", "by": 1},
                {"type": "set", "path": "pid", "value": os.getpid()}])
        return [None] * len(items)


handler = Worker
