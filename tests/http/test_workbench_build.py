"""The page shipped in the package is what workbench/src builds to (nothing edited by hand,
nothing stale): rebuilt here with the pinned esbuild and compared byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from raypipe.http.workbench import STATIC_DIR

WORKBENCH = Path(__file__).resolve().parent.parent.parent / "workbench"


def test_shipped_assets_match_a_fresh_build(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (WORKBENCH / "node_modules").is_dir():
        pytest.fail("run `make install` first: it installs workbench/'s pinned build tools")
    subprocess.run([node, "build.mjs"], cwd=WORKBENCH, env={**os.environ, "OUT": str(tmp_path)},
                   check=True, capture_output=True)
    for name in ("index.html", "app.js", "style.css"):
        assert (tmp_path / name).read_bytes() == (STATIC_DIR / name).read_bytes(), (
            f"{name} is stale: run `make workbench` and commit the result")
