"""A class handler on a pool of one actor that asks for a whole GPU: it lands on the raylet
that declares one, and holds that GPU for its life (Ray sets CUDA_VISIBLE_DEVICES)."""

import os

import ray

from raypipe import Batch, RayOptions, StepConfig, queue

config = StepConfig(name="gpu-pool", triggers=[queue("gpu.work")],
                    ray=RayOptions(actors=1, num_gpus=1, batch=Batch(4, 0.01)))


class Model:
    def __init__(self) -> None:
        self.node = ray.get_runtime_context().get_node_id()
        self.cuda = os.environ.get("CUDA_VISIBLE_DEVICES")

    async def __call__(self, msgs, ctxs):
        for msg, ctx in zip(msgs, ctxs, strict=True):
            await ctx.state.update("placed", ctx.step.name, [
                {"type": "increment", "path": f"nodes.{self.node}"},
                {"type": "set", "path": f"cuda.{msg['i']}", "value": self.cuda}])
        return [None] * len(msgs)


handler = Model
