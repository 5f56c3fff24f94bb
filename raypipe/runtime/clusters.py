"""Which Ray cluster serves an app, as recorded by the deploy that put it there: the CLI joins
``RAY_ADDRESS`` if set, else that record, and never whatever Ray it finds on the host.

A record is per app name *and* folder (two checkouts of one example on a host keep their own),
in a folder of this user's alone, and holds what a client needs to join: the GCS address and
the cluster's auth mode (a Ray 2.60 local cluster turns token auth on, and a client joins it
only with ``RAY_AUTH_MODE=token`` set; the token itself stays in Ray's own file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Record", "forget", "record", "recorded"]

#: The folder of the records; ``RAYPIPE_HOME`` moves it.
HOME_ENV = "RAYPIPE_HOME"
#: What a client needs from the deploying process's environment to join its cluster.
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")


@dataclass(frozen=True)
class Record:
    address: str
    #: ``RAY_AUTH_MODE`` and ``RAY_AUTH_TOKEN_PATH`` as the deploying process had them.
    auth: dict[str, str]


def _path(app: str, root: str | None) -> Path:
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".raypipe")
    folder = home / "clusters"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]", "_", app)
    if root:
        name += "-" + hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]
    return folder / name


def record(app: str, address: str, root: str | None = None) -> None:
    path = _path(app, root)
    auth = {k: os.environ[k] for k in AUTH_ENV if os.environ.get(k)}
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({"address": address, "auth": auth}) + "\n")
    os.chmod(scratch, 0o600)
    os.replace(scratch, path)


def recorded(app: str, root: str | None = None) -> Record | None:
    try:
        text = _path(app, root).read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    if not text.startswith("{"):  # a record of an older raypipe: the address alone
        return Record(text, {})
    try:
        data = json.loads(text)
        return Record(str(data["address"]), {str(k): str(v) for k, v in data["auth"].items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def forget(app: str, address: str | None = None, root: str | None = None) -> None:
    """Drop the record (only if it still names ``address``, when given)."""
    found = recorded(app, root)
    if found is not None and (address is None or found.address == address):
        with contextlib.suppress(OSError):
            _path(app, root).unlink()
