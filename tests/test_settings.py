"""Settings sources, the cluster records the CLI joins by, and how `import motia` resolves:
no Ray needed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from raypipe.errors import ConfigError
from raypipe.settings import IngressMode, load_settings


def test_dev_is_set_by_the_command_alone(tmp_path: Path) -> None:
    """``dev`` opens the admin surface without a token: a file or a variable that set it
    would open it under `raypipe start` too."""
    (tmp_path / "pyproject.toml").write_text("[tool.raypipe]\ndev = true\n")
    with pytest.raises(ConfigError, match="cannot set dev"):
        load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.raypipe]\n")
    with pytest.raises(ConfigError, match="RAYPIPE_DEV is not a setting"):
        load_settings(tmp_path, environ={"RAYPIPE_DEV": "1"})
    assert load_settings(tmp_path, {"dev": True}, environ={}).dev is True
    assert load_settings(tmp_path, environ={}).dev is False


def test_the_state_backend_is_memory_a_redis_or_a_redis_cluster(tmp_path: Path) -> None:
    for url in ("memory", "redis://127.0.0.1:6379/0", "rediss://h:6380", "unix:///tmp/r.sock",
                "redis+cluster://10.0.0.1:7000", "rediss+cluster://h:7000"):
        assert load_settings(tmp_path, {"state": url}, environ={}).state == url
    for url in ("postgres://h/db", "cluster://h:7000", "redis"):
        with pytest.raises(ConfigError, match="redis\\+cluster:// URL"):
            load_settings(tmp_path, {"state": url}, environ={})


def test_the_ingress_is_serves_proxy_unless_haproxy_is_asked_for(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={}).ingress == IngressMode.PROXY
    chosen = load_settings(tmp_path, environ={"RAYPIPE_INGRESS": "haproxy"})
    assert chosen.ingress == IngressMode.HAPROXY


def test_cluster_records_of_two_apps_of_one_name_do_not_overwrite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from raypipe.runtime import clusters

    monkeypatch.setenv(clusters.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    clusters.record("seed", "127.0.0.1:7001", str(tmp_path / "a" / "seed"))
    clusters.record("seed", "127.0.0.1:7002", str(tmp_path / "b" / "seed"))
    first = clusters.recorded("seed", str(tmp_path / "a" / "seed"))
    second = clusters.recorded("seed", str(tmp_path / "b" / "seed"))
    assert first is not None and first.address == "127.0.0.1:7001"
    assert second is not None and second.address == "127.0.0.1:7002"
    assert first.auth == {"RAY_AUTH_MODE": "token"}
    folder = tmp_path / "home" / "clusters"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    clusters.forget("seed", "127.0.0.1:7001", str(tmp_path / "a" / "seed"))
    assert clusters.recorded("seed", str(tmp_path / "a" / "seed")) is None
    assert clusters.recorded("seed", str(tmp_path / "b" / "seed")) == second


def test_a_stale_record_fails_at_once_naming_the_app(tmp_path: Path) -> None:
    """Run as the CLI runs it, in a process of its own with no Ray joined yet."""
    import subprocess

    from raypipe.runtime import clusters
    from raypipe.runtime.ports import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env[clusters.HOME_ENV] = str(tmp_path)
    code = ("import os, time\n"
            "from raypipe.runtime import clusters\n"
            "from raypipe.errors import RuntimeNotRunningError\n"
            "from raypipe.runtime.deploy import connect\n"
            f"clusters.record('gone', '127.0.0.1:{free_port()}', '/nowhere/gone')\n"
            "t0 = time.monotonic()\n"
            "try:\n"
            "    connect(app='gone', app_root='/nowhere/gone')\n"
            "except RuntimeNotRunningError as exc:\n"
            "    print(f'{time.monotonic() - t0:.1f}', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    took, _, message = out.stdout.strip().partition(" ")
    assert "recorded for app 'gone'" in message and "does not answer" in message, out
    assert float(took) < 10


def test_import_motia_resolves_the_same_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `motia.py` in the working directory (an app's own folder, from which the CLI runs)
    no longer wins over the shim there while the workers, elsewhere, get the shim."""
    import raypipe.motia
    from raypipe.loader import install_motia

    (tmp_path / "motia.py").write_text("LOCAL = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    saved = {k: v for k, v in sys.modules.items() if k == "motia" or k.startswith("motia.")}
    for k in saved:
        del sys.modules[k]
    try:
        install_motia()
        import motia

        assert motia is raypipe.motia
        assert os.getcwd() == str(tmp_path)
    finally:
        for k in [k for k in sys.modules if k == "motia" or k.startswith("motia.")]:
            del sys.modules[k]
        sys.modules.update(saved)
