"""Payloads by reference: Redis and the dispatcher stay flat in the payload size.

N workflows (make a payload, ``ctx.put`` it, enqueue its reference; a second step
``ctx.get`` s it and counts), with Redis state (so every value is also written to the blob
store), in waves of ``--wave`` workflows. Run once with 1 KB payloads and once with 1 MB
ones; sampled every 0.2 s: Redis ``used_memory``, the dispatcher actor's RSS, the object
store's use and the blob store's bytes, and their peaks reported against their levels before.

    python bench/ref_payloads.py [--n 10000] [--wave 200] [--kb 1 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import ray
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _local import REDIS_URL, local_apps, write_json  # noqa: E402

from raypipe.runtime.object_keeper import blob_store  # noqa: E402
from raypipe.runtime.spec import AppSpec  # noqa: E402

APP = HERE / "apps" / "payloads"
MB = 1 << 20


def _dispatcher() -> psutil.Process:
    [proc] = [p for p in psutil.process_iter(["cmdline"])
              if (p.info["cmdline"] or [""])[0].startswith("ray::Dispatcher")]
    return proc


def _plasma() -> int:
    from ray._private.internal_api import memory_summary

    used = re.search(r"Plasma memory usage (\d+) MiB", memory_summary(stats_only=True))
    return int(used.group(1)) * MB if used else 0


def _dir_bytes(path: str) -> int:
    total = 0
    for f in Path(path).glob("*.pkl"):
        with contextlib.suppress(FileNotFoundError):  # freed while counted
            total += f.stat().st_size
    return total


class Peaks:
    """Samples each gauge every 0.2 s in a thread; keeps the highest."""

    def __init__(self, gauges: dict[str, Callable[[], int]]) -> None:
        self.gauges = gauges
        self.peak = {k: g() for k, g in gauges.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for k, g in self.gauges.items():
                self.peak[k] = max(self.peak[k], g())

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def run(url: str, n: int, wave: int, kb: int) -> float:
    with httpx.Client(base_url=url, timeout=120) as client:
        t0 = time.monotonic()
        for first in range(0, n, wave):
            rid = uuid.uuid4().hex[:8]
            count = min(wave, n - first)
            assert client.post("/run", json={"run": rid, "n": count,
                                             "kb": kb}).status_code == 202
            while (got := client.get(f"/run/{rid}").json()).get("done", 0) < count:
                assert not got.get("wrong"), got
                time.sleep(0.05)
        return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--wave", type=int, default=200)
    p.add_argument("--kb", type=int, nargs="+", default=[1, 1024])
    p.add_argument("--json")
    args = p.parse_args()
    spec = AppSpec.from_dir(APP, state=REDIS_URL)
    r = redis.Redis.from_url(REDIS_URL)
    rows: list[dict[str, Any]] = []
    with local_apps([spec]) as [d]:
        store = blob_store(spec)
        assert store is not None
        run(d.url, 100, 100, 1)  # workers and the keeper started
        for kb in args.kb:
            time.sleep(5)  # the warm-up's (or last size's) values swept
            disp = _dispatcher()
            gauges = {"redis_used_memory": lambda: int(r.info("memory")["used_memory"]),
                      "dispatcher_rss": lambda d=disp: int(d.memory_info().rss),
                      "object_store": _plasma,
                      "blob_store": lambda: _dir_bytes(store.root)}
            before = {k: g() for k, g in gauges.items()}
            peaks = Peaks(gauges)
            seconds = run(d.url, args.n, args.wave, kb)
            peak = peaks.stop()
            time.sleep(6)  # two sweeps after the last wave
            after = {k: g() for k, g in gauges.items()}
            row = {"n": args.n, "wave": args.wave, "payload_bytes": kb << 10,
                   "seconds": seconds, "before": before, "peak": peak, "after": after}
            rows.append(row)
            print(f"{args.n} payloads of {kb} KB in waves of {args.wave}: {seconds:.1f} s")
            for k in gauges:
                print(f"  {k:18} before {before[k] / MB:8.1f} MB  peak +"
                      f"{(peak[k] - before[k]) / MB:7.1f} MB  after +"
                      f"{(after[k] - before[k]) / MB:7.1f} MB")
    write_json(args.json, "ref_payloads", rows)
    ray.shutdown()


if __name__ == "__main__":
    main()
