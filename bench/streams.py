"""Stream delivery latency: from ``streams.<name>.set`` to a WebSocket subscriber.

N WebSocket clients follow one group while a writer sets an item at a fixed rate; each
message carries its send time, and every client records the delay at arrival. Prints p50,
p99 and max per rate, and whether any subscriber missed an event.

    python bench/streams.py [--rates 100 1000] [--subscribers 20] [--seconds 5] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import websockets
from _local import local_app, write_json

from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec
from raypipe.runtime_protocols import Origin

APP = Path(__file__).resolve().parent / "apps" / "streams"



async def run(url: str, spec: AppSpec, rate: int, subscribers: int,
              seconds: float) -> tuple[list[float], int]:
    store = runtime_for(spec).streams
    group = f"rate-{rate}-{time.time_ns()}"
    total = int(rate * seconds)
    conns = [await websockets.connect(url) for _ in range(subscribers)]
    for ws in conns:
        await ws.send(json.dumps({"type": "join", "data": {
            "streamName": "ticks", "groupId": group, "subscriptionId": "b"}}))
        await ws.recv()  # sync

    async def read(ws: websockets.ClientConnection) -> tuple[list[float], list[int]]:
        delays, seqs = [], []
        while len(seqs) < total:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            data = msg["event"]["data"]
            delays.append(time.time() - data["sent"])
            seqs.append(data["seq"])
        return delays, seqs

    readers = [asyncio.create_task(read(ws)) for ws in conns]
    origin = Origin("bench")
    start = time.monotonic()
    for i in range(total):
        await store.set("ticks", group, "t", {"seq": i, "sent": time.time()}, origin)
        await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    results = await asyncio.gather(*readers)
    for ws in conns:
        await ws.close()
    missed = sum(1 for _, seqs in results if seqs != list(range(total)))
    return [d for delays, _ in results for d in delays], missed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--subscribers", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    rows = []
    with local_app(str(APP)) as deployment:
        spec = deployment.spec
        url = deployment.url.replace("http://", "ws://") + "/streams"
        asyncio.run(run(url, spec, 50, 2, 1))  # warm up
        print(f"stream delivery latency, {args.subscribers} WebSocket subscribers, "
              f"{args.seconds:g} s per rate (milliseconds)")
        print(f"{'events/s':>9} {'p50':>8} {'p99':>8} {'max':>8} {'missed':>7}")
        for rate in args.rates:
            delays, missed = asyncio.run(run(url, spec, rate, args.subscribers, args.seconds))
            ms = sorted(d * 1000 for d in delays)
            p99 = ms[int(len(ms) * 0.99) - 1]
            print(f"{rate:>9} {statistics.median(ms):>8.1f} {p99:>8.1f} {ms[-1]:>8.1f} "
                  f"{missed:>7}", flush=True)
            rows.append({"rate": rate, "p50_ms": statistics.median(ms), "p99_ms": p99,
                         "max_ms": ms[-1], "missed": missed})
    write_json(args.json, "streams", rows, subscribers=args.subscribers, seconds=args.seconds)


if __name__ == "__main__":
    main()
