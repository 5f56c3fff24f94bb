"""The image pipeline (examples/image-pipeline) against the same work in Ray Data, measured in
the same run on the same local Ray: N images loaded (made from their seeds) in chunks of 64
by tasks that put the pixels into the object store, then resized to 32x32 and multiplied by
a fixed random weight matrix held in each of 2 actors, in batches of 32.

raypipe is timed from ``POST /jobs`` to the job's completion (its state-trigger fan-in);
Ray Data from building the dataset to the last batch's result (a ``map_batches`` task stage
that loads the chunks, then ``map_batches`` over an actor pool of the same size and batch
size, ``materialize``). Medians of ``--repeat``, with the CPU each kind of process used per
image.

    python bench/image_pipeline.py [--n 10000] [--size 147] [--repeat 3] [--json out.json]

Needs Ray Data (``pip install 'ray[data]'``); 147x147x3 bytes is 64 KB an image.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ray

HERE = Path(__file__).resolve().parent
APP = HERE.parent / "examples" / "image-pipeline"
sys.path.insert(0, str(APP / "steps"))

import embed_step  # noqa: E402
import load_step  # noqa: E402
from _local import cpu_shares, cpu_snapshot, local_app, median, write_json  # noqa: E402
from embed_step import FEATURES, Embedder, resize  # noqa: E402
from load_step import chunk  # noqa: E402
from ray import cloudpickle  # noqa: E402
from start_job_step import CHUNK  # noqa: E402

# Ray Data's workers cannot import the example's modules by name: ship them by value.
cloudpickle.register_pickle_by_value(embed_step)
cloudpickle.register_pickle_by_value(load_step)


class RayDataEmbedder:
    """The example's model as Ray Data's callable class: the same weights and work."""

    def __init__(self) -> None:
        self.weights = Embedder().weights

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pixels = np.stack([resize(img) for img in batch["pixels"]])
        x = pixels.reshape(len(pixels), FEATURES).astype(np.float32) / 255.0
        return {"norm": np.linalg.norm(x @ self.weights, axis=1)}


def ray_data_run(n: int, size: int) -> float:
    import ray.data

    def load(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = batch["id"]
        return {"pixels": chunk(int(ids[0]), len(ids), size)}

    t0 = time.monotonic()
    ds = ray.data.range(n).map_batches(load, batch_size=CHUNK, num_cpus=0.25)
    # The same footprint as the raypipe step's actors (the app's task_num_cpus, 0.25).
    out = ds.map_batches(RayDataEmbedder, batch_size=32, concurrency=2,
                         num_cpus=0.25).materialize()
    assert out.count() == n
    return time.monotonic() - t0


def raypipe_run(url: str, n: int, size: int) -> float:
    # One client for the run: a client per poll costs the driver an SSL context each, CPU
    # taken from the pipeline on a small machine. Four polls a second: each reads the job's
    # state through the http step, CPU on the cores the pipeline runs on (Ray Data's
    # `materialize` waits without it); the completion is seen at most 0.25 s late.
    with httpx.Client(base_url=url, timeout=120) as client:
        t0 = time.monotonic()
        job = client.post("/jobs", json={"images": n, "size": size}).json()["jobId"]
        while client.get(f"/jobs/{job}").json()["status"] != "completed":
            time.sleep(0.25)
        return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--size", type=int, default=147)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    os.environ.setdefault("IMAGE_MODEL_MB", "100")
    rows: list[dict[str, Any]] = []
    with local_app(str(APP)) as d:
        raypipe_runs, data_runs = [], []
        raypipe_cpu: dict[str, float] = {}
        data_cpu: dict[str, float] = {}
        # The pool's actors up, models made, and the load step's task workers started (a
        # fan-out of chunks runs several at once).
        raypipe_run(d.url, min(args.n, 1000), args.size)
        ray_data_run(min(args.n, 1000), args.size)
        for _ in range(args.repeat):
            before = cpu_snapshot()
            raypipe_runs.append(raypipe_run(d.url, args.n, args.size))
            raypipe_cpu = cpu_shares(before, cpu_snapshot(), args.n)
            before = cpu_snapshot()
            data_runs.append(ray_data_run(args.n, args.size))
            data_cpu = cpu_shares(before, cpu_snapshot(), args.n)
        ours, theirs = median(raypipe_runs), median(data_runs)
        rows.append({"n": args.n, "image_bytes": args.size * args.size * 3,
                     "raypipe_s": ours, "ray_data_s": theirs, "ratio": ours / theirs,
                     "raypipe_runs": raypipe_runs, "ray_data_runs": data_runs,
                     "raypipe_cpu_us_per_image": raypipe_cpu,
                     "ray_data_cpu_us_per_image": data_cpu})
    row = rows[0]
    print(f"{args.n} images of {row['image_bytes']} bytes, pool of 2, batches of 32 "
          f"(medians of {args.repeat})")
    print(f"  raypipe   {ours:7.2f} s")
    print(f"  Ray Data  {theirs:7.2f} s   raypipe / Ray Data = {ours / theirs:.2f}x")
    for label, shares in (("raypipe", raypipe_cpu), ("Ray Data", data_cpu)):
        print(f"  CPU per image, {label}: " + ", ".join(
            f"{k} {v:.0f} us" for k, v in shares.items()))
    write_json(args.json, "image_pipeline", rows)
    ray.shutdown()


if __name__ == "__main__":
    main()
