"""Shipped code runs only if it is what was shipped: unpacked into a folder of this user's
alone (one another user made or opened is refused, by name), checked against the version's
digest before it is loaded, with no link out of the app followed and `.env` kept off the
cluster's store unless `ship_env` says so. Another uid is played by `runuser -u nobody`."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from raypipe.errors import UnsafePathError
from raypipe.runtime import shipping
from raypipe.runtime.spec import AppSpec

STEP = '''from raypipe import StepConfig, queue

config = StepConfig(name="work", triggers=[queue("work")])


async def handler(msg, ctx):
    return None
'''


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "nobody", "--", *cmd], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / f"ship-{uuid.uuid4().hex[:8]}"
    (root / "steps").mkdir(parents=True)
    (root / "steps" / "work_step.py").write_text(STEP)
    return root


@pytest.fixture
def shared_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory as /tmp is: every user may make folders in it (mode 1777)."""
    folder = Path(tempfile.mkdtemp(prefix="raypipe-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setattr(shipping, "_verified", {})
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _shipped(app_dir: Path, **settings: object) -> AppSpec:
    return shipping.ship(AppSpec.from_dir(app_dir, **settings))


def test_a_folder_another_user_made_first_is_refused_by_name(
        ray_session: int, app_dir: Path, shared_tmp: Path) -> None:
    spec = _shipped(app_dir)
    mine = shared_tmp / f"raypipe-{os.getuid()}"
    planted = mine / "code" / spec.namespace / spec.version / "steps"
    made = _as_nobody("sh", "-c", f"mkdir -p {planted} && echo 'import os' > "
                                  f"{planted}/work_step.py && chmod -R 777 {mine}")
    assert made.returncode == 0, made.stderr
    with pytest.raises(UnsafePathError) as refused:
        shipping.root(spec)
    assert refused.value.path == str(mine)
    assert "belongs to uid 65534" in str(refused.value)


def test_a_folder_of_ours_that_others_can_write_is_refused(
        ray_session: int, app_dir: Path, shared_tmp: Path) -> None:
    spec = _shipped(app_dir)
    mine = shared_tmp / f"raypipe-{os.getuid()}"
    mine.mkdir(mode=0o700)
    mine.chmod(0o777)
    with pytest.raises(UnsafePathError, match="open to other users"):
        shipping.root(spec)


def test_the_unpacked_version_is_closed_to_others_and_checked_before_it_loads(
        ray_session: int, app_dir: Path, shared_tmp: Path) -> None:
    spec = _shipped(app_dir)
    target = Path(shipping.root(spec))
    mine = shared_tmp / f"raypipe-{os.getuid()}"
    assert target.is_relative_to(mine)
    info = mine.stat()
    assert info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    planted = target / "steps" / "planted_step.py"
    tried = _as_nobody("sh", "-c", f"echo 'import os' > {planted}")
    assert tried.returncode != 0 and "Permission denied" in tried.stderr
    assert not planted.exists()
    assert shipping.load(spec).steps.keys() == {"work"}

    # A file changed or added after the unpack (by anyone who could) is never imported.
    (target / "steps" / "extra_step.py").write_text(STEP.replace('"work"', '"extra"'))
    shipping._verified.clear()
    with pytest.raises(UnsafePathError, match=f"does not hold version {spec.version}"):
        shipping.root(spec)


def test_links_out_of_the_app_and_env_are_not_shipped(
        ray_session: int, app_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    secret.chmod(0o600)
    (app_dir / "key.txt").symlink_to(secret)
    (app_dir / "steps" / "inside.py").symlink_to(app_dir / "steps" / "work_step.py")
    (app_dir / ".env").write_text("API_KEY=s3cret\n")

    def names(data: bytes) -> set[str]:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return set(zf.namelist())

    shipped = names(shipping.pack(app_dir))
    assert shipped == {"steps/work_step.py", "steps/inside.py"}
    with_env = names(shipping.pack(app_dir, include_env=True))
    assert with_env == shipped | {".env"}
    # ship_env changes what the version covers, so a .env edit is a new version then only.
    plain, shipping_env = AppSpec.from_dir(app_dir), AppSpec.from_dir(app_dir, ship_env=True)
    (app_dir / ".env").write_text("API_KEY=other\n")
    assert AppSpec.from_dir(app_dir).version == plain.version
    assert AppSpec.from_dir(app_dir, ship_env=True).version != shipping_env.version
