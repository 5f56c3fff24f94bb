"""Deploys ship the app: its files, zipped, go into Ray's GCS key-value store under their
version, and every process that runs the app (actors, replicas, step tasks, on any node)
unpacks that version into a local folder and loads it from there. So a cluster runs what was
deployed, not what happens to be on a node's disk; a redeploy's version sits beside the last
one, and a process moves to it without a restart.

The folder is this user's own (:mod:`raypipe.runtime.private_dir`: refused, by name, if
another user made it or can write in it), and a process loads a version only once its files
there have the digest the deploy recorded: a file planted or changed after the unpack is
never imported. The app's ``.env`` stays off the GCS unless ``ship_env`` is set.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import threading
import zipfile
from pathlib import Path

from ray.experimental import internal_kv

from raypipe.app import App
from raypipe.errors import DeployError, UnsafePathError
from raypipe.loader import load_app_cached
from raypipe.runtime.private_dir import private_dir
from raypipe.runtime.spec import AppSpec, app_digest, app_files, files_digest

__all__ = ["MAX_BYTES", "forget", "load", "root", "ship"]

#: The largest app a deploy ships (zipped): Ray's GCS is not a file store.
MAX_BYTES = 64 << 20

_KEY = "raypipe:code:{namespace}:{version}"
_lock = threading.Lock()
#: Folders this process has checked against their version's digest.
_verified: dict[tuple[str, str], str] = {}


def _key(spec: AppSpec) -> bytes:
    return _KEY.format(namespace=spec.namespace, version=spec.version).encode()


def pack(folder: Path, *, include_env: bool = False) -> bytes:
    """The app's files (those its digest covers) as a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(app_files(folder, include_env=include_env)):
            zf.write(path, str(path.relative_to(folder)))
    return buf.getvalue()


def ship(spec: AppSpec) -> AppSpec:
    """Put the app's files on the cluster; the spec that loads them from there."""
    include_env = spec.settings.ship_env
    data = pack(Path(spec.root), include_env=include_env)
    if len(data) > MAX_BYTES:
        raise DeployError("ship", f"the app folder zips to {len(data) >> 20} MB, over the "
                          f"{MAX_BYTES >> 20} MB a deploy ships; keep data files out of it")
    # Of what was packed: the files may have changed since the spec was made.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        digest = files_digest((name, functools.partial(zf.read, name))
                              for name in zf.namelist())
    shipped = AppSpec(spec.root, spec.settings, digest[:12], shipped=True, digest=digest)
    internal_kv._internal_kv_put(_key(shipped), data, overwrite=True)
    return shipped


def _verify(folder: Path, spec: AppSpec) -> None:
    found = app_digest(folder, include_env=spec.settings.ship_env)
    if found != spec.digest:
        raise UnsafePathError(str(folder), f"does not hold version {spec.version} of app "
                              f"{spec.settings.name!r} as it was shipped (its files' digest "
                              f"is {found[:12]}..., not {spec.digest[:12]}...)")


def root(spec: AppSpec) -> str:
    """Where this process loads ``spec``'s app from: its folder, or for a shipped app the
    version unpacked here (once per machine and version), checked against its digest."""
    if not spec.shipped:
        return spec.root
    done = _verified.get((spec.namespace, spec.digest))
    if done is not None:
        return done
    if not spec.digest:
        raise DeployError("ship", f"version {spec.version} of app {spec.settings.name!r} "
                          "has no digest to check its files against; deploy it again")
    base = private_dir("code", spec.namespace)
    target = base / spec.version
    with _lock:
        if not target.is_dir():
            data = internal_kv._internal_kv_get(_key(spec))
            if not data:
                raise DeployError("ship", f"version {spec.version} of app "
                                  f"{spec.settings.name!r} is not on the cluster any more")
            scratch = Path(tempfile.mkdtemp(dir=base))
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                zf.extractall(scratch)
            try:
                os.rename(scratch, target)  # whole, or not at all (another process won)
            except OSError:
                if not target.is_dir():
                    raise
        _verify(target, spec)
        _verified[spec.namespace, spec.digest] = str(target)
    return str(target)


def load(spec: AppSpec) -> App:
    """The app as ``spec`` names it, loaded once per process and version."""
    return load_app_cached(root(spec), spec.settings, spec.version)


def forget(spec: AppSpec) -> None:
    """Drop every shipped version of the app (its teardown)."""
    prefix = _KEY.format(namespace=spec.namespace, version="").encode()
    for key in internal_kv._internal_kv_list(prefix):
        internal_kv._internal_kv_del(key)
