"""Motia's own stream client (Node, from npm, unchanged) follows a raypipe workflow live."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import EXAMPLES, Deploy

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_motias_node_stream_client_follows_a_workflow(deploy_app: Deploy) -> None:
    node = shutil.which("node")
    assert node, "node is required for this test (Debian's nodejs); `make test` installs it"
    assert (NODE_DIR / "node_modules" / "@motiadev").is_dir(), (
        "run `npm ci` in tests/node (`make install` does)")
    d = deploy_app(EXAMPLES / "parallel-workflow")
    out = subprocess.run([node, "follow_workflow.mjs", d.url], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=90)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0, (out.stdout, out.stderr)
    progress = [n for n, _ in result["seen"]]
    assert progress == sorted(progress) and progress[-1] == 5
    assert result["seen"][-1] == [5, "completed"]
