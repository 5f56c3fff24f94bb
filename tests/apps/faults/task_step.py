"""One task: works (a blocking sleep, like CPU-bound work), then records itself once per index
and the node it ran on. Blocking, so that the deliveries of one batch take turns and a run
lasts long enough to be interrupted mid-way."""

import time

import ray

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="task", triggers=[queue("run.task")], flows=["faults"])


async def handler(msg: dict, ctx: FlowContext) -> None:
    time.sleep(msg["sleep_ms"] / 1000)
    node = ray.get_runtime_context().get_node_id()
    # One update: the index and node counters move with `done`, so an update applied twice
    # would show as a 2.
    await ctx.state.update("runs", msg["run"], [
        {"type": "increment", "path": "done"},
        {"type": "increment", "path": f"seen.{msg['i']}"},
        {"type": "increment", "path": f"nodes.{node}"},
    ])
