"""What the placement steps share: each records the node it ran on and the GPUs Ray gave it."""

import os

import ray


async def record(msg, ctx):
    node = ray.get_runtime_context().get_node_id()
    await ctx.state.update("placed", ctx.step.name, [
        {"type": "increment", "path": f"nodes.{node}"},
        {"type": "set", "path": f"cuda.{msg['i']}",
         "value": os.environ.get("CUDA_VISIBLE_DEVICES")}])
