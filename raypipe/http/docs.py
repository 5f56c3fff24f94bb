"""``/docs``: Swagger UI for the app's OpenAPI document, its assets served from the
``swagger-ui-bundle`` package, not a CDN, so the page works on a machine with no internet
(FastAPI's default page was blank there)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "mount_docs"]

#: Where the assets are served (under ``/docs``, which the page already owns).
ASSETS = "/docs/swagger-ui"


def mount_docs(api: FastAPI) -> None:
    api.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Under a route prefix (Serve's root_path), as FastAPI's own docs page does.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (api.openapi_url or "/openapi.json"),
            title=f"{api.title} - API docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png")
