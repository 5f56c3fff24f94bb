"""A state backend of each kind, for the suites that run against every backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from raypipe.state.backend import StateBackend, make_backend

BACKENDS = ["memory", "redis"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    app = f"test-{uuid.uuid4().hex[:8]}"  # a key prefix of its own: no test sees another's
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory"
    b = make_backend(url, app)
    yield b
    await b.close()
    if request.param == "redis":
        import redis

        r = redis.Redis.from_url(url)
        keys = list(r.scan_iter(f"raypipe:{app}:*"))
        if keys:
            r.delete(*keys)
