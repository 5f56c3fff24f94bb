"""Test an app in-process, in seconds, with no Ray: :class:`TestApp` loads it as
``raypipe dev`` would and runs it on the same delivery engine, state and streams services
and triggers as the actors host, with a fake clock. See docs/testing.md."""

from raypipe.testing._app import (
    DeadLettersView,
    ObjectsView,
    PendingWorkError,
    StateView,
    StreamsView,
    TestApp,
)

__all__ = ["DeadLettersView", "ObjectsView", "PendingWorkError", "StateView", "StreamsView",
           "TestApp"]
