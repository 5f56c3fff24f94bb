"""The blob store: where values put by reference are also written when state is durable, so
that a cluster restart, or a replay a week later, still finds them (Ray-free).

Any fsspec URL (``s3://bucket/prefix``, ``gs://...``) or a local folder. A value is
pickled (protocol 5), and unpickling runs code: so nothing is read back that was not
verified. A local folder is raypipe's own (made 0700, refused if another user owns it or
can write it); every other store needs ``blob_key``, and each blob then carries an
HMAC-SHA256 of its id and bytes under that key, checked before it is unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from raypipe.errors import ConfigError, RefGoneError, UnsafePathError

__all__ = ["BlobStore"]

_TAG = 32  # bytes of an HMAC-SHA256


class BlobStore:
    def __init__(self, url: str, key: bytes | None) -> None:
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = str(root).rstrip("/")
        self.local = isinstance(fs, LocalFileSystem)
        if not self.local and key is None:
            raise ConfigError(f"blob_store {url!r} is not a local folder: set blob_key, so "
                              "that what is read back from it is verified before it is loaded")
        self._key = key
        if self.local:
            _own_folder(Path(self.root))
        else:
            self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, ref_id: str) -> str:
        return f"{self.root}/{ref_id}.pkl"

    def _tag(self, ref_id: str, data: bytes) -> bytes:
        assert self._key is not None
        return hmac.new(self._key, ref_id.encode() + b"\0" + data, hashlib.sha256).digest()

    def write(self, ref_id: str, value: Any) -> None:
        data = pickle.dumps(value, protocol=5)
        blob = data + self._tag(ref_id, data) if self._key is not None else data
        tmp = f"{self.root}/.{ref_id}.tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(blob)
        self.fs.mv(tmp, self._path(ref_id))  # readers never see half a blob

    def read(self, ref_id: str) -> Any:
        try:
            with self.fs.open(self._path(ref_id), "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            raise RefGoneError(ref_id, f"not in the blob store {self.root}") from None
        if self._key is not None:
            data, tag = blob[:-_TAG], blob[-_TAG:]
            if len(blob) < _TAG or not hmac.compare_digest(tag, self._tag(ref_id, data)):
                raise RefGoneError(ref_id, "its blob failed verification (not written with "
                                           "this app's blob_key): not loaded")
            blob = data
        return pickle.loads(blob)  # verified above: by its key, or as our own folder's

    def delete(self, ref_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(ref_id))

    def ids(self) -> list[str]:
        """Every reference the store holds a blob for."""
        names = self.fs.ls(self.root, detail=False)
        return [n.rsplit("/", 1)[-1][:-4] for n in names
                if n.endswith(".pkl") and not n.rsplit("/", 1)[-1].startswith(".")]


def _own_folder(path: Path) -> None:
    """``path`` made 0700 where missing; refused unless it is this user's and closed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(str(path), "is not a folder (a link or a file stands there)")
    if info.st_uid != os.getuid():
        raise UnsafePathError(str(path), f"belongs to uid {info.st_uid}, not to this user")
    if info.st_mode & 0o022:
        raise UnsafePathError(str(path), f"can be written by other users (mode "
                                         f"{stat.S_IMODE(info.st_mode):o})")
