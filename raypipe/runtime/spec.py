from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from raypipe import constants
from raypipe.settings import Settings, load_settings

__all__ = ["AppSpec", "app_files", "app_version"]


@dataclass(frozen=True)
class AppSpec:
    """What every actor, replica and task needs to load the same app: a Ray task argument.
    ``version`` names the app's files as deployed: workers load the app by it, so a
    redeploy's deliveries run the new code while the old one finishes."""

    root: str
    settings: Settings
    version: str = ""
    #: Whether the app's files travel with the deploy (:mod:`raypipe.runtime.shipping`);
    #: else every process reads them at ``root``.
    shipped: bool = False

    @classmethod
    def from_dir(cls, app_dir: str | Path, **overrides: object) -> AppSpec:
        root = Path(app_dir).resolve()
        return cls(str(root), load_settings(root, overrides), app_version(root))

    @property
    def namespace(self) -> str:
        return self.settings.namespace


def app_version(root: Path) -> str:
    """A hash of the app's files (their paths and contents; what deploys ship), 12 hex
    digits."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(app_files(root)):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def app_files(root: Path) -> list[Path]:
    """The files that make the app: what its version hashes and a deploy ships."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and d not in constants.SKIPPED_DIRS
                       and not (Path(dirpath, d) / "pyvenv.cfg").exists()]
        files.extend(Path(dirpath, f) for f in filenames
                     if not f.endswith((".pyc", ".pyo")) and (not f.startswith(".")
                                                              or f == constants.ENV_FILE))
    return files
