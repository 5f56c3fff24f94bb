from __future__ import annotations

import socket

from raypipe.runtime.ports import RAY_WORKER_PORTS, free_port


def test_free_port_is_free_and_outside_rays_worker_ports() -> None:
    for _ in range(20):
        port = free_port()
        assert port not in RAY_WORKER_PORTS
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
