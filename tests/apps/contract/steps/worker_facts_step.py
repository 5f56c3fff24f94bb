"""Records which Ray task ran it and how often its module was imported in that process."""

import os

from raypipe import FlowContext, StepConfig, queue

IMPORTS = globals().setdefault("IMPORTS", 0) + 1

config = StepConfig(name="worker-facts", triggers=[queue("facts")])


async def handler(msg: dict, ctx: FlowContext) -> None:
    import ray

    await ctx.state.set("facts", str(msg["i"]), {
        "task": ray.get_runtime_context().get_task_name(),
        "pid": os.getpid(),
        "imports": IMPORTS,
    })
