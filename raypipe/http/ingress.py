"""The Serve deployment that serves an app's HTTP steps: each replica loads the app once and
builds its FastAPI app (``__serve_build_asgi_app__``), so nothing app-specific is pickled.
``raypipe dev`` moves a running replica to a new version in place (:meth:`Ingress.reload`)."""

from __future__ import annotations

from typing import Any

from ray import serve

from raypipe import constants
from raypipe.http.app import build_http_app
from raypipe.runtime import registry, shipping
from raypipe.runtime.bridge import runtime_for
from raypipe.runtime.spec import AppSpec

__all__ = ["Ingress"]


# Handlers mostly wait on actors, so a replica takes many requests at once.
@serve.deployment(name=constants.INGRESS_DEPLOYMENT, max_ongoing_requests=1000)
@serve.ingress()
class Ingress:
    def __init__(self, spec: AppSpec) -> None:
        # A replica Serve starts again (after a crash, or with the deploy's first arguments)
        # serves the version deployed last, as the actors do.
        self.spec = registry.current(spec)
        self._prepared: tuple[str, Any] | None = None  # (version, its routes)

    async def check_health(self) -> None:
        """Serve's replica health check: liveness only. The replica answers this (its event
        loop runs), so it works. Whether the state backend or the dispatcher answers is
        readiness, reported by ``/_raypipe/health``: failing this check on it made Serve stop
        the replica during a Redis outage, and every route, the health route included, 404
        until a new one started."""

    def _build(self, spec: AppSpec) -> Any:
        deadline = spec.settings.backend_timeout_seconds
        return build_http_app(shipping.load(spec), lambda: runtime_for(spec, deadline))

    def __serve_build_asgi_app__(self) -> Any:
        from raypipe.logger import configure_console
        from raypipe.settings import LogFormat

        settings = self.spec.settings
        configure_console(json_lines=settings.log_format == LogFormat.JSON,
                          file=settings.log_file)
        return self._build(self.spec)

    async def version(self) -> str:
        """The version this replica serves."""
        return self.spec.version

    async def prepare(self, spec: AppSpec) -> str:
        """Load ``spec``'s version and build its routes, to serve at :meth:`reload`: a reload
        builds them while the actors move to the version, and only swaps them after."""
        self._prepared = (spec.version, self._build(spec))
        return spec.version

    async def reload(self, spec: AppSpec) -> str:
        """Serve ``spec``'s version from now on, without a new replica: its routes replace
        the old ones for every request that starts after this returns (a request under way
        finishes on the version it started with). A version that fails to load changes
        nothing."""
        prepared, self._prepared = self._prepared, None
        app = prepared[1] if prepared and prepared[0] == spec.version else self._build(spec)
        self._set_asgi_app(app)  # type: ignore[attr-defined]  # Serve's ingress wrapper
        self.spec = spec
        return spec.version
