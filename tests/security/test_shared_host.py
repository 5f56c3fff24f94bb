"""Apps that share a host. A `raypipe dev` of the seed, in a Ray of its own, runs beside this
session's Ray and its app, as a developer's second app or CI beside `raypipe dev` would:

- neither port ever answers for the other app, from the moment it accepts connections and
  through a replica restart on either side (each answer names its app);
- no port is shared between the two Rays (Serve's fallback proxy, HAProxy's stats and
  metrics, Ray's own metrics ports are each chosen free);
- HAProxy's admin socket (the opt-in `ingress = "haproxy"` path, which the dev app uses here)
  is in a folder of this user's alone: another uid cannot reach it;
- the CLI finds the dev app's cluster and its token from a fresh environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import ray

from tests.conftest import EXAMPLES, ROOT, Deploy, descendants, free_port, wait_for

SEED = EXAMPLES / "parallel-workflow"
SEED_NAME = "parallel-workflow"
FAULTS = Path(__file__).resolve().parent.parent / "apps" / "faults"
#: Ports Serve and Ray would fix for every Ray of a host.
FIXED_PORTS = {8000, 8404, 8500, 9000, 9101, 9500, 44217, 44227}


class Answers:
    """Every answer one port gave, as (status, the app it names or None)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None]] = []
        self.lock = threading.Lock()

    def add(self, status: int, app: str | None) -> None:
        with self.lock:
            self.seen.append((status, app))

    def apps(self) -> set[str]:
        with self.lock:
            return {a for _, a in self.seen if a is not None}

    def since_up(self, app: str) -> list[tuple[int, str | None]]:
        """The answers from the app's first 200 on: a 404 among them (Serve's "path not
        found") came from a proxy that does not know this app's routes: another app's."""
        with self.lock:
            first = self.seen.index((200, app))
            return self.seen[first:]


def _ask(url: str) -> tuple[int, str | None] | None:
    try:
        r = httpx.get(f"{url}/_raypipe/health", timeout=10)
    except httpx.HTTPError:
        return None  # nothing accepted the connection, or it was cut: not an answer
    try:
        body = r.json()
    except ValueError:
        return r.status_code, None
    return r.status_code, body.get("app") if isinstance(body, dict) else None


class Poller:
    """Asks a port its health in a loop, in a thread, recording every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = Answers()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            got = _ask(self.url)
            if got is not None:
                self.answers.add(*got)
            self._stop.wait(0.02)

    def stop(self) -> Answers:
        self._stop.set()
        self._thread.join(30)
        return self.answers


def _fresh_env(home: Path) -> dict[str, str]:
    """A shell's environment: nothing of this session's Ray (its address, auth mode, the ports
    it was given)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "AUTOSCALER_", "DASHBOARD_", "RAYPIPE_"))}
    env["RAYPIPE_HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def dev_app(ray_session: int, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_fresh_env(home), "RAYPIPE_INGRESS": "haproxy"}
    poller = Poller(url)  # from before the port accepts anything
    proc = subprocess.Popen(
        [sys.executable, "-m", "raypipe.cli", "dev", str(SEED), "--port", str(port),
         "--num-cpus", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return (200, SEED_NAME) in poller.answers.seen

        wait_for(up, timeout=240, interval=0.5, message="raypipe dev to serve the seed")
        yield {"proc": proc, "url": url, "home": home, "poller": poller}
    finally:
        poller.stop()
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _replica_pid(serve_app: str, among: set[int]) -> int:
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.info["pid"] in among and any(
                f"ServeReplica:{serve_app}" in part for part in p.info["cmdline"] or ()):
            return int(p.info["pid"])
    raise AssertionError(f"no replica of {serve_app} among {len(among)} processes")


def _listening(pids: set[int]) -> set[int]:
    ports = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ports.add(conn.laddr.port)
    return ports


def test_two_apps_never_answer_for_each_other_through_replica_restarts(
        dev_app: dict[str, Any], deploy_app: Deploy) -> None:
    from raypipe import constants

    here = deploy_app(FAULTS)
    here_name = here.spec.settings.name
    ours = Poller(here.url)
    our_replica = _serve_replica_actor(here_name)
    their_replica = _replica_pid(constants.serve_app_name(SEED_NAME),
                                 descendants(dev_app["proc"].pid))
    try:
        # A replica restart on each side: Serve starts a new one while the port stays open.
        ray.kill(ray.get_actor(our_replica, namespace="serve"))
        os.kill(their_replica, signal.SIGKILL)
        for url, name in ((here.url, here_name), (dev_app["url"], SEED_NAME)):
            wait_for(lambda u=url, n=name: _ask(u) == (200, n), timeout=180, interval=0.2,
                     message=f"{name} to serve again after its replica restart")
        time.sleep(1)  # a last second of answers after both are back
    finally:
        mine = ours.stop()
    theirs = dev_app["poller"].answers
    assert mine.apps() == {here_name}, mine.seen
    assert theirs.apps() == {SEED_NAME}, [a for a in theirs.seen if a[1] != SEED_NAME]
    assert len(mine.seen) >= 5 and len(theirs.seen) >= 5
    for answers, name in ((mine, here_name), (theirs, SEED_NAME)):
        crossed = [a for a in answers.since_up(name) if a[0] == 404]
        assert not crossed, f"{name}'s port answered 404 {len(crossed)} times once it was up"
    # Both replicas were replaced, not merely slow.
    assert _serve_replica_actor(here_name) != our_replica
    assert _replica_pid(constants.serve_app_name(SEED_NAME),
                        descendants(dev_app["proc"].pid)) != their_replica


def _serve_replica_actor(app_name: str) -> str:
    from raypipe import constants

    serve_app = constants.serve_app_name(app_name)
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == "serve" and f"REPLICA::{serve_app}#" in actor["name"]:
            return str(actor["name"])
    raise AssertionError(f"no replica actor of {serve_app}")


def test_no_port_is_shared_between_the_two_rays(dev_app: dict[str, Any]) -> None:
    dev_tree = descendants(dev_app["proc"].pid) | {dev_app["proc"].pid}
    theirs = _listening(dev_tree)
    ours = _listening((descendants(os.getpid()) | {os.getpid()}) - dev_tree)
    assert theirs and ours
    assert not theirs & ours, f"ports both Rays listen on: {sorted(theirs & ours)}"
    assert not (theirs | ours) & FIXED_PORTS, sorted((theirs | ours) & FIXED_PORTS)
    # The app's own HTTP port listens on loopback only.
    port = int(dev_app["url"].rsplit(":", 1)[1])
    binds = {c.laddr.ip for c in psutil.net_connections("tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert binds == {"127.0.0.1"}, binds


def test_haproxys_admin_socket_is_closed_to_another_user(dev_app: dict[str, Any]) -> None:
    sock = _haproxy_socket(descendants(dev_app["proc"].pid))
    folder = sock.parent
    while folder.name != f"raypipe-{os.getuid()}":
        folder = folder.parent
    info = folder.stat()
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700, oct(info.st_mode)
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
             "s.sendall(b'show info\\n'); print(s.recv(100))")
    as_nobody = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", probe,
                                str(sock)], capture_output=True, text=True, timeout=60)
    assert as_nobody.returncode != 0 and "Permission denied" in as_nobody.stderr, as_nobody
    as_owner = subprocess.run([sys.executable, "-c", probe, str(sock)], capture_output=True,
                              text=True, timeout=60)
    assert as_owner.returncode == 0 and "Name" in as_owner.stdout, as_owner


def _haproxy_socket(among: set[int]) -> Path:
    """The admin socket of the HAProxy among ``among``, as its config names it."""
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.info["pid"] in among and p.info["name"] == "haproxy":
            args = p.info["cmdline"]
            config = Path(args[args.index("-f") + 1])
            for line in config.read_text().splitlines():
                if line.strip().startswith("stats socket"):
                    return Path(line.split()[2])
    raise AssertionError("no HAProxy with an admin socket among the dev app's processes")


def test_the_cli_finds_raypipe_devs_cluster_and_token_from_a_fresh_shell(
        dev_app: dict[str, Any]) -> None:
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "raypipe.cli", "status", str(SEED)],
                         cwd="/", env=_fresh_env(dev_app["home"]), capture_output=True,
                         text=True, timeout=120)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"app         {SEED_NAME}" in out.stdout
    assert "InvalidAuthToken" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert took < 60, f"raypipe status took {took:.0f}s"
