"""The model: a class handler on a pool of 2 actors, taking up to 32 images a call. Its
weights are made once per actor; a batch of images is one matrix product. The pixels come
from the object store, by the reference of the chunk each image was loaded in."""

import asyncio
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
        # Per image: its count, and its result as an item of its own (the job's item stays
        # small, so a write to it costs the same for the last image as for the first). Each
        # is its own effect, applied once however the image is retried; made together, the
        # batch's writes go to the state and the stream in one call each.
        writes = []
        for it, ctx, norm in zip(items, ctxs, norms, strict=True):
            job = it["job"]
            writes.append(ctx.state.set(f"norms-{job}", str(it["index"]),
                                        round(float(norm), 3)))
            writes.append(ctx.state.update("jobs", job, [
                {"type": "increment", "path": "done", "by": 1}]))
            writes.append(ctx.streams.jobs.update("all", job, [
                {"type": "increment", "path": "done", "by": 1}]))
        await asyncio.gather(*writes)
        return [None] * len(items)


handler = Embedder
