"""The FastAPI app of an app: one route per http trigger, the admin, workbench and streams
routers, /docs served offline, the guard in front of everything."""


from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from raypipe import __version__ as raypipe_version
from raypipe import triggers as t
from raypipe.app import App
from raypipe.errors import BackendUnavailableError, InvalidIdError
from raypipe.http.admin import admin_router
from raypipe.http.guard import BodyLimits, Guard
from raypipe.http.openapi import Components, openapi_extra
from raypipe.http.routes import StepRoute, endpoint
from raypipe.http.streams import streams_router
from raypipe.http.unavailable import invalid_id_handler, unavailable_handler
from raypipe.http.workbench import mount_workbench, workbench_router
from raypipe.runtime_protocols import Runtime

__all__ = ["DOCS_ASSETS", "build_http_app"]

#: Where /docs and /redoc find their assets (under /docs, which those pages already own).
DOCS_ASSETS = "/docs/assets"


def build_http_app(app: App, runtime: Callable[[], Runtime]) -> FastAPI:
    """One route per http trigger; ``runtime`` is called per request (it may connect lazily)."""
    # /docs and /redoc with their assets served by the app (fastapi-offline), not a CDN:
    # FastAPI's own pages were blank on a machine without internet.
    api = FastAPIOffline(title=app.name, description=f"raypipe app `{app.name}` on raypipe "
                         f"{raypipe_version}", version=app.version or "local",
                         static_url=DOCS_ASSETS)
    comps = Components()
    routes = [(step, tr) for step in app.with_trigger(t.HttpTrigger)
              for tr in step.triggers_of(t.HttpTrigger)]
    # Starlette takes the first route that matches: a static segment must come before a
    # parameter in its place (GET /greetings/summary before /greetings/{name}).
    routes.sort(key=lambda route: [seg.startswith("{") for seg in route[1].path.split("/")])
    for step, tr in routes:
        extra, responses = openapi_extra(tr, comps)
        api.router.add_api_route(
            tr.path, endpoint(app, step, tr, runtime), methods=[tr.method],
            name=step.name, summary=step.name, description=step.config.description,
            tags=list(step.config.flows) or None, openapi_extra=extra or None,
            responses=responses or None, route_class_override=StepRoute,
        )

    api.include_router(admin_router(app, runtime))
    api.include_router(workbench_router(app, runtime))
    if app.streams:
        api.include_router(streams_router(app, runtime))
    mount_workbench(api)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            doc = get_openapi(title=api.title, version=api.version, description=api.description,
                              routes=api.routes)
            doc.setdefault("components", {}).setdefault("schemas", {}).update(comps.schemas)
            api.openapi_schema = doc
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    api.add_exception_handler(BackendUnavailableError, unavailable_handler)
    api.add_exception_handler(InvalidIdError, invalid_id_handler)
    limits = BodyLimits(app.settings.max_body_bytes, [
        (tr.method, tr.path, tr.max_body_bytes) for _, tr in routes
        if tr.max_body_bytes is not None])
    api.add_middleware(Guard, settings=app.settings, body_limits=limits)
    return api
