"""``raypipe dev``'s watcher, on real files (no Ray): which saves it reports, by name."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from watchfiles import Change

from raypipe.runtime.watch import AppWatcher, changed_names


def _until_quiet(watcher: AppWatcher) -> set[tuple[Change, str]]:
    """Every change seen until the watcher has been quiet for a second."""
    seen: set[tuple[Change, str]] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        burst = watcher.next(timeout=1.0)
        if burst is None and seen:
            return seen
        seen |= burst or set()
    raise AssertionError(f"no change seen in 30 s (got {seen})")


def _watching(watcher: AppWatcher, probe: Path) -> None:
    """Return once the watcher (set up in its own thread) sees changes: a probe file is
    written until it reports one, then removed and its reports drained."""
    deadline = time.monotonic() + 30
    while watcher.next(timeout=0.2) is None:
        assert time.monotonic() < deadline, "the watcher saw nothing in 30 s"
        probe.write_text(str(time.monotonic()))
    probe.unlink()
    while watcher.next(timeout=1.0) is not None:
        pass


def test_a_save_through_a_temporary_file_reports_the_saved_file_alone(tmp_path: Path) -> None:
    step = tmp_path / "steps" / "a_step.py"
    step.parent.mkdir()
    step.write_text("x = 1\n")
    gone = tmp_path / "steps" / "old_step.py"
    gone.write_text("y = 1\n")
    watcher = AppWatcher(tmp_path).start()
    try:
        _watching(watcher, tmp_path / "probe.py")
        # sed -i writes the new text to a temporary file beside the step, then renames it.
        subprocess.run(["sed", "-i", "s/1/2/", str(step)], check=True)
        gone.unlink()
        burst = _until_quiet(watcher)
    finally:
        watcher.stop()
    assert len({path for _, path in burst}) > 2, burst  # the temporary file was seen
    assert changed_names(burst) == ["a_step.py", "old_step.py"]
    assert step.read_text() == "x = 2\n"
