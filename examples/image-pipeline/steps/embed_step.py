"""The model: a class handler on a pool of 2 actors, taking up to 32 images a call. Its
weights are made once per actor; a batch of images is one matrix product. The pixels come
from the object store, by the reference of the chunk each image was loaded in."""

import os
from typing import Any

import numpy as np

from raypipe import Batch, FlowContext, RayOptions, StepConfig, queue

config = StepConfig(
    name="embed",
    triggers=[queue("image.ready")],
    flows=["images"],
    ray=RayOptions(actors=2, batch=Batch(max_size=32, max_wait_s=0.02)),
)

SIDE = 32  # images are resized to SIDE x SIDE x 3
FEATURES = 3 * SIDE * SIDE


def resize(img: np.ndarray) -> np.ndarray:
    """Nearest-neighbour to SIDE x SIDE."""
    rows = np.linspace(0, img.shape[0] - 1, SIDE).astype(int)
    cols = np.linspace(0, img.shape[1] - 1, SIDE).astype(int)
    return img[rows][:, cols]


class Embedder:
    def __init__(self) -> None:
        megabytes = float(os.environ.get("IMAGE_MODEL_MB", "100"))
        outputs = max(1, int(megabytes * 2**20 / 4 / FEATURES))
        self.weights = np.random.default_rng(0).standard_normal(
            (FEATURES, outputs), dtype=np.float32)

    async def __call__(self, items: list[dict[str, Any]], ctxs: list[FlowContext]) -> list[Any]:
        chunks: dict[str, np.ndarray] = {}
        for it, ctx in zip(items, ctxs, strict=True):
            ref = it["chunk"]
            if ref["id"] not in chunks:  # a batch's images mostly share a chunk: one read
                chunks[ref["id"]] = await ctx.get(ref)
        pixels = np.stack([resize(chunks[it["chunk"]["id"]][it["offset"]]) for it in items])
        x = pixels.reshape(len(items), FEATURES).astype(np.float32) / 255.0
        vectors = x @ self.weights  # the batch in one product
        norms = np.linalg.norm(vectors, axis=1)
        for it, ctx, norm in zip(items, ctxs, norms, strict=True):
            # One increment per image: its own effect, applied once however it is retried.
            await ctx.state.update("jobs", it["job"], [
                {"type": "increment", "path": "done", "by": 1},
                {"type": "set", "path": f"norms.{it['index']}", "value": round(float(norm), 3)}])
            await ctx.streams.jobs.update("all", it["job"], [
                {"type": "increment", "path": "done", "by": 1}])
        return [None] * len(items)


handler = Embedder
