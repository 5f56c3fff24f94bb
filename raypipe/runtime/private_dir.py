"""This user's own folder under the temporary directory (Ray-free): what raypipe unpacks or
creates on a host that other users share goes there, and is used only if the folder is
owned by this user and closed to everyone else. A folder another user made first, or
opened, is refused by name, never used as found: code unpacked there would run as us.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from raypipe.errors import UnsafePathError

__all__ = ["private_dir"]

#: The folder's name under the temporary directory; one per uid.
_NAME = "raypipe-{uid}"


def _check(path: Path) -> None:
    """``path`` is a real folder (not a link), owned by this user, closed to group and others."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(str(path), "is not a folder (a link or a file stands there)")
    if info.st_uid != os.getuid():
        raise UnsafePathError(str(path), f"belongs to uid {info.st_uid}, not to this user "
                                         f"({os.getuid()})")
    if info.st_mode & 0o077:
        raise UnsafePathError(str(path), f"is open to other users (mode "
                                         f"{stat.S_IMODE(info.st_mode):o}; 700 expected)")


def private_dir(*parts: str, base: str | Path | None = None) -> Path:
    """``<tmp>/raypipe-<uid>/<parts...>``, made 0700 where missing and checked where found.
    Only the user's own folder needs the check: nobody else can enter it, so nothing below it
    can have been planted by another user."""
    root = Path(base or tempfile.gettempdir()) / _NAME.format(uid=os.getuid())
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    _check(root)
    path = root.joinpath(*parts)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
