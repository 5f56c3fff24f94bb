"""The pytest plugin raypipe registers (entry point ``pytest11``): the ``raypipe_app`` fixture
factory. ``raypipe_app("path/to/app", state=...)`` returns a started
:class:`~raypipe.testing.TestApp`; it is closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["raypipe_app"]


@pytest.fixture
def raypipe_app() -> Iterator[Callable[..., Any]]:
    from raypipe.testing import TestApp

    opened: list[TestApp] = []

    def make(app_dir: str | Path, **settings: Any) -> TestApp:
        app = TestApp(app_dir, settings=settings).__enter__()
        opened.append(app)
        return app

    yield make
    for app in reversed(opened):
        app.__exit__(None, None, None)
