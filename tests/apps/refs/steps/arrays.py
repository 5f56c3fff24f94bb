"""What the steps share: a deterministic array of ``mb`` megabytes, and its digest."""

import hashlib

import numpy as np


def make(seed: int, mb: float) -> np.ndarray:
    return np.random.default_rng(seed).random(int(mb * (1 << 20)) // 8)


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(arr)).cast("B")).hexdigest()
