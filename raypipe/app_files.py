"""Finding an app's files: Python step files (``*_step.py``, ``*.step.py``) and stream files
(``*_stream.py``, ``*.stream.py``), and, in a Motia app, those of its other languages (steps
raypipe does not run, streams it knows by name)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from raypipe import constants
from raypipe.errors import StepLoadError
from raypipe.streams.config import StreamConfig

__all__ = ["discover", "discover_foreign", "foreign_streams"]


def _walk(root: Path) -> Iterator[Path]:
    """Every file of the app, sorted, skipping hidden folders, ``__pycache__``, virtual
    environments and ``node_modules``."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in constants.SKIPPED_DIRS
            and not (Path(dirpath, d) / "pyvenv.cfg").exists()
        )
        for name in sorted(filenames):
            yield Path(dirpath, name)


def discover(root: Path) -> tuple[list[Path], list[Path]]:
    """Step files and stream files under ``root``."""
    steps: list[Path] = []
    streams: list[Path] = []
    for path in _walk(root):
        if path.name.endswith(constants.STEP_SUFFIXES):
            steps.append(path)
        elif path.name.endswith(constants.STREAM_SUFFIXES):
            streams.append(path)
    return steps, streams


def discover_foreign(root: Path) -> tuple[list[Path], list[Path]]:
    """Step and stream files of a Motia app in its other languages (TypeScript,
    JavaScript): steps raypipe does not run, and streams it knows by name."""
    steps: list[Path] = []
    streams: list[Path] = []
    for path in _walk(root):
        name = path.name
        if any(name.endswith(f"{sep}step{ext}") for sep in "._"
               for ext in constants.FOREIGN_SUFFIXES):
            steps.append(path)
        elif any(name.endswith(f".stream{ext}") for ext in constants.FOREIGN_SUFFIXES):
            streams.append(path)
    return steps, streams


#: The ``name`` of a Motia stream config written in TypeScript or JavaScript.
_FOREIGN_STREAM_NAME = re.compile(r"""\bname\s*:\s*['"`]([A-Za-z0-9_.-]+)['"`]""")


def foreign_streams(root: Path, paths: list[Path]) -> tuple[dict[str, StreamConfig],
                                                              list[StepLoadError]]:
    """Streams a ``*.stream.ts`` declares, by the ``name`` of its config (items unchecked:
    its schema is TypeScript's), so Python steps that write them work."""
    found: dict[str, StreamConfig] = {}
    errors: list[StepLoadError] = []
    for path in paths:
        match = _FOREIGN_STREAM_NAME.search(path.read_text(errors="replace"))
        if match is None:
            errors.append(StepLoadError(str(path.relative_to(root)), "config.name",
                                        "no stream name found in its config"))
            continue
        found.setdefault(match.group(1), StreamConfig(match.group(1)))
    return found, errors


