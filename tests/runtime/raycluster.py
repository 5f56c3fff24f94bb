"""Throwaway Ray clusters for tests: a head and worker nodes started with `ray start --block`
on free ports (never Redis' 6379 nor 10002-19999), each ended by the pids it started.

The test session's own Ray holds Ray's default ports (GCS, dashboard agent, metrics), so every
port a node opens is named here.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ROOT, alive, descendants, free_port, wait_for

RAY = str(Path(sys.executable).with_name("ray"))
SERVE = str(Path(sys.executable).with_name("serve"))
RAYPIPE = str(Path(sys.executable).with_name("raypipe"))


def _worker_ports() -> list[str]:
    """A block of ports for a node's workers, above Ray's default worker range."""
    base = random.randrange(40_000, 59_000, 200)
    return [f"--min-worker-port={base}", f"--max-worker-port={base + 199}"]


def _node_ports() -> list[str]:
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", *_worker_ports()]


def _naming_gcs_port(port: int) -> set[int]:
    """Processes whose arguments name this cluster's GCS (``--gcs-address=IP:PORT``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="ignore").split("\0")
            except OSError:
                continue
            if any(a.startswith("--gcs-address=") and a.endswith(f":{port}") for a in args):
                found.add(int(entry.name))
    return found


@dataclass
class Node:
    proc: subprocess.Popen[str]
    pids: set[int] = field(default_factory=set)

    def all_pids(self) -> set[int]:
        self.pids |= descendants(self.proc.pid)
        return {self.proc.pid, *self.pids}

    def kill(self) -> None:
        """SIGKILL, like a machine lost: no process of the node gets to clean up."""
        pids = self.all_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=30)
        wait_for(lambda: not [p for p in pids if alive(p)], timeout=30,
                 message="the node's processes to exit")


class LocalCluster:
    def __init__(self) -> None:
        self.gcs = free_port()
        self.dashboard = free_port()
        self.api = f"http://127.0.0.1:{self.dashboard}"
        self.serve_port = free_port()
        self.nodes: list[Node] = []
        # Serve's default data path, as a plain `ray start --head` has it (the session's own
        # Ray, like `raypipe dev`, runs the throughput-optimised one).
        base = {k: v for k, v in os.environ.items()
                if k != "RAY_ADDRESS" and not k.startswith(("RAY_SERVE_", "RAY_AUTH_"))}
        # Token authentication, as Ray 2.59+ has it for local clusters, with a token of the
        # cluster's own: `ray start` turns it on only where ~/.ray/auth_token already exists
        # (a `ray.init` made it), so leaning on that file made the cluster's mode depend on
        # which tests ran before.
        self.secrets = Path(tempfile.mkdtemp(prefix="raycluster-"))
        token = self.secrets / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.base_env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                         # The nodes share this host, so their Serve proxies share one port
                         # (SO_REUSEPORT) and the kernel hands each connection to any of them.
                         # Serve stops the proxy of a node left without a replica 30 s after it
                         # starts draining, and drops the connections already handed to it
                         # ("Server disconnected without sending a response" after a
                         # redeploy moved the replica). On a real cluster each node has its own
                         # address and a load balancer stops sending to a draining proxy.
                         "RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S": "3600"}
        self.env = {**self.base_env, "RAY_API_SERVER_ADDRESS": self.api,
                    "RAY_ADDRESS": f"127.0.0.1:{self.gcs}"}

    def start_head(self, num_cpus: int = 2) -> Node:
        return self._start_until(
            lambda: ["--head", f"--port={self.gcs}", f"--dashboard-port={self.dashboard}",
                     f"--ray-client-server-port={free_port()}", f"--num-cpus={num_cpus}"],
            self.base_env, self._dashboard_up, 120, "ray start --head")

    def add_node(self, num_cpus: int, resources: dict[str, float], num_gpus: int = 0) -> Node:
        """A worker node, returned once the cluster lists a new alive node holding what it
        declares. A count of nodes is not enough: a listing that failed once counted none,
        and the head alone then passed for the new node."""
        before = wait_for(self.alive_node_resources, timeout=60, message="the node list")
        declared = {"CPU": float(num_cpus), **resources, **({"GPU": num_gpus} if num_gpus else {})}

        def joined() -> bool:
            now = self.alive_node_resources() or {}
            return any(i not in before and all(res.get(k, 0.0) >= v for k, v in declared.items())
                       for i, res in now.items())

        return self._start_until(
            lambda: [f"--address=127.0.0.1:{self.gcs}", f"--num-cpus={num_cpus}",
                     f"--num-gpus={num_gpus}", f"--resources={json.dumps(resources)}"],
            self.env, joined, 180, f"the worker node with {declared} to join")

    def _start_until(self, args: Callable[[], list[str]], env: dict[str, str],
                     ready: Callable[[], bool], timeout: float, what: str) -> Node:
        """Start a node until it is ``ready``, three tries at most. Each try gets fresh ports:
        a `ray start` that lost a port race exits at once, and waiting on it would only run
        out the clock."""
        said = ""
        for _ in range(3):
            node = self._start(args(), env)
            wait_for(lambda n=node: n.proc.poll() is not None or ready(),  # type: ignore[misc]
                     timeout=timeout, interval=1, message=what)
            if node.proc.poll() is None:
                return node
            said = node.proc.stdout.read()[-2000:] if node.proc.stdout else ""
            node.kill()  # what it left behind
        raise AssertionError(f"{what}: failed three times in a row: {said}")

    def _start(self, args: list[str], env: dict[str, str]) -> Node:
        proc = subprocess.Popen([RAY, "start", *args, *_node_ports(), "--block"], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        node = Node(proc)
        self.nodes.append(node)
        return node

    def alive_node_resources(self) -> dict[str, dict[str, float]] | None:
        """Each alive node's total resources by node id; None when the listing failed (the
        dashboard still starting, a timeout on a busy machine)."""
        out = self.run(RAY, "list", "nodes", "--detail", "--format=json", "--address",
                       self.api, timeout=60)
        try:
            nodes = json.loads(out.stdout)
        except ValueError:
            return None
        return {n["node_id"]: n.get("resources_total", {}) for n in nodes
                if n.get("state") == "ALIVE"}

    def _dashboard_up(self) -> bool:
        try:
            return httpx.get(f"{self.api}/api/version", timeout=2).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Every process of every node, and anything else naming this cluster's GCS."""
        ours = set().union(*(n.all_pids() for n in self.nodes)) | _naming_gcs_port(self.gcs)
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for n in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.proc.communicate(timeout=30)
        wait_for(lambda: not [p for p in ours if alive(p)], timeout=30,
                 message="the test cluster's processes to exit")
        self.nodes.clear()
        # `ray start` registered the cluster for `address="auto"`; it is gone, so is that.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{self.gcs}"):
            current.unlink()

    def close(self) -> None:
        """After the last :meth:`stop`: the cluster's token goes too (a stopped cluster may
        be started again on the same ports and token)."""
        shutil.rmtree(self.secrets, ignore_errors=True)

    def run(self, *args: str, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=ROOT, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout)
