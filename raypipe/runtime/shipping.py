"""Deploys ship the app: its files, zipped, go into Ray's GCS key-value store under their
version (a hash of them), and every process that runs the app (actors, replicas, step tasks,
on any node) unpacks that version into a local folder and loads it from there. So a cluster
runs what was deployed, not what happens to be on a node's disk; a redeploy's version sits
beside the last one, and a process moves to it without a restart.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import zipfile
from pathlib import Path

from ray.experimental import internal_kv

from raypipe.app import App
from raypipe.errors import DeployError
from raypipe.loader import load_app_cached
from raypipe.runtime.spec import AppSpec, app_files

__all__ = ["MAX_BYTES", "forget", "load", "root", "ship"]

#: The largest app a deploy ships (zipped): Ray's GCS is not a file store.
MAX_BYTES = 64 << 20

_KEY = "raypipe:code:{namespace}:{version}"
_lock = threading.Lock()


def _key(spec: AppSpec) -> bytes:
    return _KEY.format(namespace=spec.namespace, version=spec.version).encode()


def pack(folder: Path) -> bytes:
    """The app's files (those its version hashes) as a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(app_files(folder)):
            zf.write(path, str(path.relative_to(folder)))
    return buf.getvalue()


def ship(spec: AppSpec) -> AppSpec:
    """Put the app's files on the cluster; the spec that loads them from there."""
    data = pack(Path(spec.root))
    if len(data) > MAX_BYTES:
        raise DeployError("ship", f"the app folder zips to {len(data) >> 20} MB, over the "
                          f"{MAX_BYTES >> 20} MB a deploy ships; keep data files out of it")
    internal_kv._internal_kv_put(_key(spec), data, overwrite=True)
    return AppSpec(spec.root, spec.settings, spec.version, shipped=True)


def root(spec: AppSpec) -> str:
    """Where this process loads ``spec``'s app from: its folder, or for a shipped app the
    version unpacked here (once per machine and version)."""
    if not spec.shipped:
        return spec.root
    target = Path(tempfile.gettempdir()) / "raypipe-code" / spec.namespace / spec.version
    if target.is_dir():
        return str(target)
    with _lock:
        if not target.is_dir():
            data = internal_kv._internal_kv_get(_key(spec))
            if not data:
                raise DeployError("ship", f"version {spec.version} of app "
                                  f"{spec.settings.name!r} is not on the cluster any more")
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=target.parent))
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                zf.extractall(scratch)
            try:
                os.rename(scratch, target)  # whole, or not at all (another process won)
            except OSError:
                if not target.is_dir():
                    raise
    return str(target)


def load(spec: AppSpec) -> App:
    """The app as ``spec`` names it, loaded once per process and version."""
    return load_app_cached(root(spec), spec.settings, spec.version)


def forget(spec: AppSpec) -> None:
    """Drop every shipped version of the app (its teardown)."""
    prefix = _KEY.format(namespace=spec.namespace, version="").encode()
    for key in internal_kv._internal_kv_list(prefix):
        internal_kv._internal_kv_del(key)
