"""Records, per shard of the message, the node its task ran on. Small in CPUs (a hundredth),
so that every task a shard runs at once fits on its node: a full node would send tasks to
the other (the placement is a preference)."""

import ray

from raypipe import RayOptions, StepConfig, queue
from raypipe.shards import shard_of

config = StepConfig(name="work", triggers=[queue("work")], ray=RayOptions(num_cpus=0.01))


async def handler(msg, ctx):
    shard = shard_of(ctx.message_id, 2)
    node = ray.get_runtime_context().get_node_id()
    await ctx.state.update("placed", "work", [
        {"type": "increment", "path": f"by_shard.{shard}.{node}"},
        {"type": "increment", "path": "n"}])
