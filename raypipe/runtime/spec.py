from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from raypipe import constants
from raypipe.settings import Settings, load_settings

__all__ = ["AppSpec", "SpecArg", "app_digest", "app_files", "files_digest", "spec_arg", "spec_of"]

log = logging.getLogger("raypipe.deploy")


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
    #: SHA-256 of the app's files (:func:`app_digest`); ``version`` is its first 12 digits.
    #: A process loads shipped files only if they still have it.
    digest: str = ""

    @classmethod
    def from_dir(cls, app_dir: str | Path, *, env_in_version: bool = False,
                 **overrides: object) -> AppSpec:
        """The app at ``app_dir`` with its settings. ``env_in_version``: its ``.env`` counts
        in the version even unshipped (``raypipe dev``, which reloads on an edit of it; the
        version is shown on the health route, so a deploy that serves a network keeps it
        out unless ``ship_env`` ships it anyway)."""
        root = Path(app_dir).resolve()
        settings = load_settings(root, overrides)
        digest = app_digest(root, include_env=settings.ship_env or env_in_version)
        return cls(str(root), settings, digest[:12], digest=digest)

    @property
    def namespace(self) -> str:
        return self.settings.namespace


#: An app's spec as a task argument: pickled once by the dispatcher. Ray serialises bytes as
#: they are, and an :class:`AppSpec` (a dataclass holding a pydantic model) through
#: cloudpickle's Python hooks on every task, 56 us each.
SpecArg = bytes


def spec_arg(spec: AppSpec) -> SpecArg:
    return pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)


@functools.lru_cache(maxsize=16)
def _unpickled(arg: SpecArg) -> AppSpec:
    spec = pickle.loads(arg)
    assert isinstance(spec, AppSpec)
    return spec


def spec_of(arg: AppSpec | SpecArg) -> AppSpec:
    """The spec a task was given (once per process and spec, from :func:`spec_arg`)."""
    return arg if isinstance(arg, AppSpec) else _unpickled(arg)


def app_digest(root: Path, *, include_env: bool = False) -> str:
    """SHA-256 of the app's files (:func:`app_files`): their paths and contents."""
    files = app_files(root, include_env=include_env)
    return files_digest((p.relative_to(root).as_posix(), p.read_bytes) for p in files)


def files_digest(files: Iterable[tuple[str, Callable[[], bytes]]]) -> str:
    """SHA-256 of ``(relative path, read)`` pairs, in path order, each part length-prefixed
    (no two sets of files share a digest by moving bytes between a name and a content)."""
    digest = hashlib.sha256()
    for name, read in sorted(files, key=lambda f: f[0]):
        raw = name.encode("utf-8", "surrogateescape")
        data = read()
        digest.update(len(raw).to_bytes(4, "big") + raw + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def app_files(root: Path, *, include_env: bool = False) -> list[Path]:
    """The files that make the app: what its digest covers and a deploy ships. A link is
    followed only to a file inside the app (one to a file outside it, say a key in the
    home folder, would ship that file's contents); ``.env`` counts only with
    ``include_env`` (the ``ship_env`` setting)."""
    root = Path(root)
    top = root.resolve()
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and d not in constants.SKIPPED_DIRS
                       and not Path(dirpath, d).is_symlink()
                       and not (Path(dirpath, d) / "pyvenv.cfg").exists()]
        for f in filenames:
            if f.endswith((".pyc", ".pyo")) or (f.startswith(".") and not (
                    include_env and f == constants.ENV_FILE)):
                continue
            path = Path(dirpath, f)
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                log.warning("%s links out of the app (to %s): not part of it", path,
                            path.resolve())
                continue
            if path.is_file():
                files.append(path)
    return files
