"""Which Ray cluster serves an app, as recorded by the deploy that put it there: the CLI joins
``RAY_ADDRESS`` if set, else that record, and never whatever Ray it finds on the host."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

__all__ = ["forget", "record", "recorded"]

#: The folder of the records (one file per app name); ``RAYPIPE_HOME`` moves it.
HOME_ENV = "RAYPIPE_HOME"


def _path(app: str) -> Path:
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".raypipe")
    return home / "clusters" / re.sub(r"[^\w.-]", "_", app)


def record(app: str, address: str) -> None:
    path = _path(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(address + "\n")


def recorded(app: str) -> str | None:
    try:
        return _path(app).read_text().strip() or None
    except OSError:
        return None


def forget(app: str, address: str | None = None) -> None:
    """Drop the record (only if it still names ``address``, when given)."""
    if address is None or recorded(app) == address:
        with contextlib.suppress(OSError):
            _path(app).unlink()
