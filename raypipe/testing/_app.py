"""``TestApp``: an app loaded as ``raypipe dev`` loads it, run in-process with no Ray and no
network port, on a fake clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from raypipe.app import App
from raypipe.engine.clock import FakeClock
from raypipe.enqueue import publish
from raypipe.http.app import build_http_app
from raypipe.loader import load_app
from raypipe.settings import load_settings
from raypipe.testing._runtime import LocalRuntime

__all__ = ["PendingWorkError", "TestApp"]

T = TypeVar("T")

#: Where the client's requests go: a loopback name, so the admin surface answers as it does
#: for a developer under ``raypipe dev``.
BASE_URL = "http://localhost"


class PendingWorkError(AssertionError):
    """:meth:`TestApp.run_until_idle` timed out; ``pending`` maps each step to its deliveries
    still in flight."""

    def __init__(self, timeout: float, pending: dict[str, int], running: int) -> None:
        self.pending = pending
        shown = ", ".join(f"{step}: {n}" for step, n in sorted(pending.items())) or "none"
        super().__init__(f"still pending after {timeout:g}s: {shown} ({running} attempts "
                         "running now)")


class _LoopTransport(httpx.BaseTransport):
    """A synchronous client's requests, served by the app on its own loop's thread."""

    def __init__(self, test_app: TestApp, asgi: Any) -> None:
        self._app = test_app
        self._asgi = httpx.ASGITransport(app=asgi)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> httpx.Response:
            copy = httpx.Request(request.method, request.url, headers=request.headers,
                                 content=body, extensions=request.extensions)
            response = await self._asgi.handle_async_request(copy)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content, request=request)

        return self._app._wait(send())


class _View:
    def __init__(self, test_app: TestApp) -> None:
        self._app = test_app

    @property
    def _rt(self) -> LocalRuntime:
        return self._app.runtime


class StateView(_View):
    """The app's state: ``get``, ``list`` (values), ``items`` (``{"id", "data"}``),
    ``list_groups``. Awaitable under ``async with``."""

    def get(self, group: str, key: str) -> Any:
        return self._app._call(self._rt.state.get(group, key))

    def list(self, group: str) -> Any:
        async def values() -> list[Any]:
            return [i["data"] for i in await self._rt.state.list(group)]
        return self._app._call(values())

    def items(self, group: str) -> Any:
        return self._app._call(self._rt.state.list(group))

    def list_groups(self) -> Any:
        return self._app._call(self._rt.state.list_groups())


class StreamsView(_View):
    """Stream items: ``get(stream, group, id)``, ``list(stream, group)``,
    ``list_groups(stream)``. Awaitable under ``async with``."""

    def get(self, stream: str, group: str, item_id: str) -> Any:
        return self._app._call(self._rt.streams.get(stream, group, item_id))

    def list(self, stream: str, group: str) -> Any:
        return self._app._call(self._rt.streams.list(stream, group))

    def list_groups(self, stream: str) -> Any:
        return self._app._call(self._rt.streams.list_groups(stream))


class DeadLettersView(_View):
    """``list()``, ``get(id)``, ``replay(id)`` (every one with ``replay()``). Awaitable
    under ``async with``."""

    def list(self) -> Any:
        return self._app._call(self._rt.dead_letters.list())

    def get(self, entry_id: str) -> Any:
        return self._app._call(self._rt.dead_letters.get(entry_id))

    def replay(self, entry_id: str | None = None) -> Any:
        return self._app._call(self._rt.dead_letters.replay(
            None if entry_id is None else [entry_id]))


class ObjectsView(_View):
    """Values put by reference (``ctx.put``): ``get(ref)``, and ``stats()`` (``objects``
    and ``bytes`` held). Freed as on a cluster, when :meth:`TestApp.run_until_idle` ends
    and nothing names them."""

    def get(self, ref: Any) -> Any:
        return self._app._call(self._rt.objects.get(ref))

    def stats(self) -> dict[str, Any]:
        return self._rt.objects.stats()


class TestApp:
    """An app run in-process, as ``raypipe dev`` would run it but with no Ray and no port::

        with TestApp("examples/parallel-workflow") as app:
            r = app.client.post("/api/workflow/start", json={"totalSteps": 3})
            app.run_until_idle()
            assert app.state.get("workflows", r.json()["workflowId"])["status"] == "completed"

    ``client`` is an httpx client over the app's routes (its http steps, streamed responses,
    the workbench's API behind its guard). Under ``async with`` the client is an
    ``httpx.AsyncClient`` and every method below returns an awaitable.

    Deliveries, retries, dead letters, FIFO groups, effects and triggers are the delivery
    engine's, as on Ray; time is a :class:`~raypipe.engine.clock.FakeClock` that
    :meth:`run_until_idle` moves on through backoffs and delays, and :meth:`advance` moves
    on by hand (cron). Handlers run on the app's loop, so their own ``asyncio.sleep`` takes
    real time.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, app_dir: str | Path, *, settings: Mapping[str, Any] | None = None
                 ) -> None:
        self.root = Path(app_dir).resolve()
        # As `raypipe dev` loads it: the admin surface open to loopback names.
        self.settings = load_settings(self.root, {"dev": True, **(settings or {})})
        self.clock = FakeClock(start=time.time())
        self.state = StateView(self)
        self.streams = StreamsView(self)
        self.dead_letters = DeadLettersView(self)
        self.objects = ObjectsView(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._async = False
        self._app: App | None = None
        self._runtime: LocalRuntime | None = None
        self.client: Any = None

    # --- life ---------------------------------------------------------------------------------
    @property
    def app(self) -> App:
        assert self._app is not None, "use TestApp as a context manager"
        return self._app

    @property
    def runtime(self) -> LocalRuntime:
        assert self._runtime is not None, "use TestApp as a context manager"
        return self._runtime

    async def _start(self) -> Any:
        self._app = load_app(self.root, self.settings)
        self._runtime = LocalRuntime(self._app, self.clock)
        await self._runtime.start()
        return build_http_app(self._app, lambda: self.runtime)

    def __enter__(self) -> TestApp:
        loop = self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="raypipe-testapp", daemon=True)
        self._thread.start()
        started.wait()
        try:
            asgi = self._wait(self._start())
        except BaseException:  # the app did not load: no loop left running behind it
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(30)
            loop.close()
            raise
        self.client = httpx.Client(transport=_LoopTransport(self, asgi), base_url=BASE_URL)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._loop is not None and self._thread is not None
        try:
            self.client.close()
            self._wait(self.runtime.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()

    async def __aenter__(self) -> TestApp:
        self._async = True
        self._loop = asyncio.get_running_loop()
        asgi = await self._start()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                        base_url=BASE_URL)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.client.aclose()
        await self.runtime.close()

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro`` run on the app's loop, from another thread (the sync API)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T | Awaitable[T]:
        """The result (sync use), or the awaitable (under ``async with``)."""
        if self._async:
            return coro
        return self._wait(coro)

    # --- driving it ---------------------------------------------------------------------------
    def enqueue(self, topic: str, data: Any = None, *, group_id: str | None = None) -> Any:
        """Validate and deliver a message to every step subscribed to ``topic`` (as
        ``raypipe enqueue`` does); returns its id."""
        return self._call(publish(self.app, self.runtime, topic, data,
                                  trace_id=f"test-{time.monotonic_ns():x}", group_id=group_id))

    def run_until_idle(self, timeout: float = 10.0) -> Any:
        """Run every delivery, state and stream trigger and retry that is due, moving the
        fake clock on through backoffs and delays, until nothing is in flight. Raises
        :class:`PendingWorkError`, naming what is still pending, after ``timeout`` seconds of
        real time."""
        return self._call(self._until_idle(timeout))

    def advance(self, seconds: float) -> Any:
        """Move the fake clock on by ``seconds``: cron ticks, backoffs and delays that fall
        due fire in order (run them with :meth:`run_until_idle`)."""
        return self._call(self.clock.advance(seconds))

    async def _until_idle(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        rt = self.runtime
        while True:
            await self.clock.settle()
            pending = rt.engine.outcomes.in_flight
            if not pending and not rt.busy:
                # What the finished workflows held by reference goes, as a cluster's
                # sweeps would free it.
                await rt.objects.settle()
                return
            if loop.time() > deadline:
                by_step: dict[str, int] = {}
                for step, _ in pending.values():
                    by_step[step] = by_step.get(step, 0) + 1
                raise PendingWorkError(timeout, by_step, rt.executor.running)
            wake = self.clock.next_at()
            if rt.busy or wake is None:
                await asyncio.sleep(0.001)  # a handler waits on real time or I/O
                continue
            # Nothing runs on real time now, but a handler that just finished in its thread
            # may have left its settling to the loop: let that run before time moves, or a
            # cron tick would fire in a run with no backoff to wait for.
            before = set(pending)
            await self.clock.settle()
            if rt.busy or set(rt.engine.outcomes.in_flight) != before:
                continue
            # Everything in flight waits on the clock (a backoff, a delay): skip to it.
            await self.clock.advance(max(0.0, wake - self.clock.monotonic()))

    # --- what happened ------------------------------------------------------------------------
    @property
    def logs(self) -> list[dict[str, Any]]:
        """Every log line the app's steps wrote (``ctx.logger``), oldest first."""
        return self.runtime.telemetry.telemetry.logs(0, None, limit=1 << 30)[1]

    @property
    def traces(self) -> list[dict[str, Any]]:
        """Recent traces, newest first, each with its spans (steps, attempts, outcomes)."""
        store = self.runtime.telemetry.telemetry
        return [store.trace(t["trace_id"]) or t for t in store.traces(limit=1 << 30)]
