"""One Ray (and one Serve) for the whole session; each test app gets its own namespace."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raypipe.runtime.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
APPS = ROOT / "tests" / "apps"


_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Cluster records of the session's own: tests deploy the shipped examples from this
    checkout, and with the user's ``~/.raypipe`` they overwrote, then deleted, the record of
    the user's own `raypipe dev` of the same example (its CLI then found no cluster)."""
    from raypipe.runtime import clusters

    config.stash[_HOME] = home = tempfile.mkdtemp(prefix="raypipe-tests-home-")
    os.environ[clusters.HOME_ENV] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


#: Folders whose tests start Ray one way or another (the session's, `ray start`, `raypipe dev`).
_RAY_FOLDERS = ("runtime", "security")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``ray`` marker on every test that needs a Ray: `pytest -m "not ray"` is the fast
    tier, `make test` runs everything."""
    for item in items:
        folder = Path(str(item.path)).parent.name
        if folder in _RAY_FOLDERS or "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[int]:
    """Ray with 2 CPUs and Serve on a free port; yields the HTTP port."""
    import ray
    from ray import serve

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # "local": always a new Ray, never one that `ray start` left registered on this machine.
    from raypipe.runtime.deploy import prepare_local_ray

    prepare_local_ray()  # the Serve data path `raypipe dev` uses
    ray.init(address="local", num_cpus=2, namespace="raypipe-tests", include_dashboard=False,
             logging_level="WARNING")
    from raypipe.runtime.deploy import start_serve

    port = free_port()
    start_serve("127.0.0.1", port)
    yield port
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``$REDIS_URL`` (``make test`` sets it, starting a redis-server if needed) or the local
    default; a Redis that does not answer fails the test, it never skips it."""
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {url} ({exc}): run `make test`, or start redis-server, "
                    "or set REDIS_URL")
    return url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster of three primaries on loopback (their bus ports picked too: the
    default, port + 10000, falls in Ray's worker ports), as ``redis+cluster://``; the
    servers started here are stopped by pid. No redis-server to start fails the test."""
    import subprocess

    import redis

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("the Redis Cluster tests start one: they need redis-server and redis-cli "
                    "(apt-get install -y redis-server)")
    procs: list[subprocess.Popen[bytes]] = []
    ports = []
    try:
        for i in range(3):
            port, bus = free_port(), free_port()
            folder = tmp_path_factory.mktemp(f"redis-cluster-{i}")
            procs.append(subprocess.Popen(
                [server, "--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no", "--dir", str(folder)],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            ports.append(port)
        for port in ports:
            wait_for(lambda port=port: _answers(port), timeout=30,
                     message=f"a Redis Cluster node on port {port}")
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        nodes = [redis.Redis(port=p, decode_responses=True) for p in ports]
        wait_for(lambda: all(n.cluster("info")["cluster_state"] == "ok" for n in nodes),
                 timeout=60, message="the Redis Cluster's slots to be served")
        for node in nodes:
            node.close()
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _answers(port: int) -> bool:
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def app_keys(url: str, app: str) -> list[str]:
    """Every key of ``app`` in the Redis (or Redis Cluster) at ``url``."""
    from raypipe.constants import app_key_patterns

    client = _sync_client(url)
    try:
        return sorted({k for pattern in app_key_patterns(app)
                       for k in client.scan_iter(match=pattern, count=1000)})
    finally:
        client.close()


def effect_record_keys(client: Any, app: str) -> list[str]:
    """The app's effect records and their owners' sets, in every shard (``client``: a
    synchronous redis-py client)."""
    from raypipe.constants import app_key_patterns

    keys = {k if isinstance(k, str) else k.decode()
            for pattern in app_key_patterns(app)[1:] for k in client.scan_iter(match=pattern)}
    return sorted(k for k in keys if re.search(r"}:(e|o):|}:owners$", k))


def drop_app_keys(url: str, app: str) -> None:
    client = _sync_client(url)
    try:
        for key in app_keys(url, app):
            client.delete(key)
    finally:
        client.close()


def _sync_client(url: str) -> Any:
    import redis
    from redis.cluster import RedisCluster

    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url(url.replace("+cluster", "", 1), decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


Deploy = Callable[..., Any]


@pytest.fixture
def deploy_app(ray_session: int) -> Iterator[Deploy]:
    """``deploy_app(app_dir, **settings)`` deploys under a unique name; removed after the test."""
    from raypipe.runtime.deploy import deploy, teardown
    from raypipe.runtime.spec import AppSpec

    specs: list[Any] = []

    def _deploy(app_dir: Path | str, **overrides: Any) -> Any:
        name = overrides.pop("name", None) or f"{Path(app_dir).name}-{uuid.uuid4().hex[:8]}"
        # The session's Serve listens on loopback, as `raypipe dev`'s does.
        overrides.setdefault("dev", True)
        spec = AppSpec.from_dir(app_dir, name=name, port=ray_session, **overrides)
        specs.append(spec)
        return deploy(spec)

    yield _deploy
    for spec in specs:
        teardown(spec)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.2,
             message: str | Callable[[], str] = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``message`` (or what it returns, to
    describe the state at that moment) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("the workbench tests need Debian's chromium: apt-get install -y chromium "
                    "(`make install` does it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()
