"""``raypipe dev``'s file watcher (watchfiles): changes to what makes the app (its step,
stream and helper modules, ``.env``, ``pyproject.toml``, any file a deploy ships), not to
caches, virtual environments or editors' scratch files."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

from raypipe import constants

__all__ = ["AppFilter", "AppWatcher", "changed_names"]

#: Milliseconds of quiet before a burst of writes (an editor's save) counts as one change:
#: watchfiles' default of 1.6 s alone would exceed the 2 s an edit has to be live.
DEBOUNCE_MS = 50


class AppFilter(DefaultFilter):
    """watchfiles' defaults (``.git``, ``__pycache__``, editors' swap files...), the folders
    an app never loads from, and hidden files but ``.env``."""

    def __init__(self) -> None:
        super().__init__(ignore_dirs=(*DefaultFilter.ignore_dirs, *constants.SKIPPED_DIRS))

    def __call__(self, change: Change, path: str) -> bool:
        name = Path(path).name
        if name.startswith(".") and name != constants.ENV_FILE:
            return False
        return super().__call__(change, path)


class AppWatcher:
    """Bursts of changes under an app's folder, watched in a thread from :meth:`start` on: a
    save made while the app deploys is not missed (the watch began before it)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._bursts: queue.SimpleQueue[set[tuple[Change, str]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raypipe-watch", daemon=True)

    def start(self) -> AppWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        # Not the main thread: Ctrl-C is the caller's; stop() ends the watch.
        for burst in watch(self.root, watch_filter=AppFilter(), debounce=DEBOUNCE_MS, step=20,
                           stop_event=self._stop, raise_interrupt=False, rust_timeout=200):
            self._bursts.put(burst)

    def next(self, timeout: float) -> set[tuple[Change, str]] | None:
        """The changes seen since the last call (every burst waiting, together), or ``None``
        after ``timeout`` seconds without one."""
        try:
            found = self._bursts.get(timeout=timeout)
        except queue.Empty:
            return None
        while True:
            try:
                found |= self._bursts.get_nowait()
            except queue.Empty:
                return found

    def stop(self) -> None:
        self._stop.set()


def changed_names(burst: set[tuple[Change, str]]) -> list[str]:
    """The names of the files a burst changed, as ``raypipe dev`` reports them: not those it
    made and removed again (``sed -i`` and some editors write a temporary file beside the
    one they save, then rename it over it)."""
    kinds: dict[str, set[Change]] = {}
    for change, path in burst:
        kinds.setdefault(path, set()).add(change)
    return sorted({Path(path).name for path, seen in kinds.items()
                   if Path(path).exists() or seen == {Change.deleted}})
