"""Reads a chunk of a job's images (made from their seeds here, as a real pipeline would read
them from storage) and puts their pixels into Ray's object store once: each image's message
carries the chunk's reference and the image's place in it, never the pixels."""

from typing import Any

import numpy as np

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(
    name="load",
    triggers=[queue("images.load")],
    enqueues=["image.ready"],
    flows=["images"],
)


def image(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def chunk(first: int, count: int, size: int) -> np.ndarray:
    return np.stack([image(first + i, size) for i in range(count)])


async def handler(msg: dict[str, Any], ctx: FlowContext) -> None:
    pixels = await ctx.put(chunk(msg["first"], msg["count"], msg["size"]))
    for offset in range(msg["count"]):
        ctx.enqueue("image.ready", {"job": msg["job"], "index": msg["first"] + offset,
                                    "chunk": pixels, "offset": offset})
