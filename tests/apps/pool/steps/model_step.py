"""A step that holds a "model" in a pool of 2 actors and takes its deliveries in batches.
Each input's result counts itself once (an increment per item: a repeat shows as 2); the
model's identity and each batch's size are kept so tests see the pool and the batching."""

import os
import time
import uuid
from typing import Any

from raypipe import Batch, FlowContext, RayOptions, StepConfig, queue

config = StepConfig(
    name="model",
    triggers=[queue("item", config={"maxRetries": 3, "backoffDelayMs": 10})],
    ray=RayOptions(actors=2, batch=Batch(max_size=8, max_wait_s=0.05), num_cpus=0.5),
)

#: Models made in this process (raypipe.testing runs every step in one).
LOADED: list[str] = []


class Model:
    def __init__(self) -> None:
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.weights = [2] * 1000  # the "model", loaded once
        LOADED.append(self.id)

    async def __call__(self, items: list[dict[str, Any]], ctxs: list[FlowContext]) -> list[Any]:
        if items[0]["slow"]:
            time.sleep(items[0]["slow"])  # a long batch, for a kill mid-batch
        out: list[Any] = []
        for item, ctx in zip(items, ctxs, strict=True):
            if item["poison"] and ctx.attempt == 1:
                out.append(ValueError(f"item {item['i']} poisoned"))
                continue
            await ctx.state.update(f"results-{item['run']}", str(item["i"]), [
                {"type": "increment", "path": "n", "by": 1},
                {"type": "set", "path": "value", "value": item["i"] * self.weights[0]},
                {"type": "set", "path": "model", "value": self.id},
                {"type": "set", "path": "batch", "value": len(items)},
                {"type": "set", "path": "attempt", "value": ctx.attempt}])
            out.append(None)
        return out


handler = Model
