"""What every benchmark starts with: a Ray of its own with Serve, and one app deployed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray import serve

from raypipe.runtime.deploy import Deployment, deploy, teardown
from raypipe.runtime.spec import AppSpec


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not 10002 <= port <= 19999:  # Ray's worker port range here
            return port


@contextmanager
def local_app(app_dir: str, num_cpus: int = 2) -> Iterator[Deployment]:
    """A new local Ray (``address="local"``) and Serve, the app deployed; all ended after."""
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    spec = AppSpec.from_dir(app_dir)
    try:
        yield deploy(spec)
    finally:
        teardown(spec)
        serve.shutdown()
        ray.shutdown()
