"""Python's cyclic garbage collector, set for the processes raypipe runs on Ray (task workers,
the app's actors, actor pools), once each has imported Ray, raypipe and the app.

Those imports leave objects that live as long as the process, and every delivery allocates
short-lived ones: with Python's defaults a worker collects every few hundred deliveries, and
its older generations go through the imports again (what that cost is in
bench/results/report.md). As Serve does for its proxy and replicas, what exists after the
imports is frozen (never traversed again), and young collections run after more
allocations. Unlike Serve, nothing is collected first: a full collection of the imports would
add to every actor's start, and they leave little garbage to keep."""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

#: Allocations (less deallocations) between two young-generation collections (Python: 700).
YOUNG_THRESHOLD = 10_000

_settled = False


def settle() -> None:
    """Freeze what the process holds now, and collect the young generation less often from
    now on. Once per process: later calls (an app's reload) do nothing, as what a
    new version loads is small beside Ray's own imports."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
