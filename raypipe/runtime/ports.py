"""Free local ports for what raypipe, its tests and benchmarks start (Ray-free)."""

from __future__ import annotations

import socket

__all__ = ["RAY_WORKER_PORTS", "free_port"]

#: Ray's default range for worker processes' ports (``--min/max-worker-port``): a port handed
#: out here and taken by a Ray worker before it is bound would make either side fail.
RAY_WORKER_PORTS = range(10002, 20000)


def free_port() -> int:
    """A port free on 127.0.0.1 now, outside :data:`RAY_WORKER_PORTS`."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in RAY_WORKER_PORTS:
            return port
    raise RuntimeError("no free port outside Ray's worker port range")
