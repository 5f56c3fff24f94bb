"""The GC setting of raypipe's Ray processes (`raypipe.runtime.gc_tuning`), in a process of its
own: it freezes what the imports left and collects the young generation less often, once."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from raypipe.runtime import gc_tuning
default = gc.get_threshold()
assert gc.get_freeze_count() == 0
gc_tuning.settle()
frozen = gc.get_freeze_count()
assert frozen > 10_000, frozen
assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, *default[1:]), gc.get_threshold()
junk = [[i] for i in range(1000)]
gc_tuning.settle()  # a second call (an app's reload) changes nothing
assert gc.get_freeze_count() == frozen
print("ok")
"""


def test_settle_freezes_once_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
