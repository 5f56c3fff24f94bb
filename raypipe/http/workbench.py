"""The workbench: a web page at ``/_raypipe/`` (static assets built from ``workbench/`` and
shipped in the package) and the JSON API under ``/_raypipe/api`` it reads: flows, live logs,
traces, state and stream items, and the http steps for the endpoint tester. Dead letters use
the admin endpoints (``/_raypipe/dlq``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from raypipe import triggers as t
from raypipe.app import App
from raypipe.errors import NotJSONError
from raypipe.flows import build_graph, to_json
from raypipe.jsonvalues import plain_json
from raypipe.runtime_protocols import Origin, Runtime, TelemetrySink
from raypipe.schemas import Schema
from raypipe.state.ids import check_ids

__all__ = ["STATIC_DIR", "mount_workbench", "workbench_router"]

STATIC_DIR = Path(__file__).resolve().parent / "workbench_static"
#: Writes made from the workbench carry this trace id (and no effect id: they are not retried).
WORKBENCH_ORIGIN = Origin("workbench", "workbench")

Json = dict[str, Any]


def _endpoints(app: App) -> list[Json]:
    out = []
    for step in app.with_trigger(t.HttpTrigger):
        for tr in step.triggers_of(t.HttpTrigger):
            schema = tr.body_schema
            if schema is not None and not isinstance(schema, Schema):
                schema = Schema(schema)
            body = None if schema is None else schema.json_schema()
            out.append({"step": step.name, "method": tr.method, "path": tr.path,
                        "description": step.config.description, "body_schema": body,
                        "flows": list(step.config.flows)})
    return sorted(out, key=lambda e: (e["path"], e["method"]))


def _telemetry(rt: Runtime) -> Any:
    sink: TelemetrySink | None = getattr(rt, "telemetry", None)
    if sink is None:
        raise HTTPException(503, "this runtime keeps no telemetry")
    return sink


def _plain(value: Any, what: str) -> Any:
    try:
        return plain_json(value, what)
    except NotJSONError as exc:
        raise HTTPException(422, str(exc)) from None


def workbench_router(app: App, runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(prefix="/_raypipe/api", tags=["workbench"], include_in_schema=False)

    @router.get("/app")
    async def describe() -> Json:
        return {"name": app.name, "version": app.version,
                "flows": to_json(build_graph(app))["flows"],
                "endpoints": _endpoints(app), "streams": sorted(app.streams)}

    @router.get("/flows")
    async def flow(flow: str | None = None) -> Json:
        if flow is not None and flow not in to_json(build_graph(app))["flows"]:
            raise HTTPException(404, f"no flow {flow!r}")
        return to_json(build_graph(app, flow))

    @router.get("/status")
    async def status() -> Json:
        """What ``raypipe status`` shows: deliveries in flight, dead letters, each step's
        tally, each actor pool (actors, starting, busy, backlog, min, max)."""
        stats = getattr(runtime(), "stats", None)
        if stats is None:
            raise HTTPException(404, "this runtime keeps no status")
        return await stats()  # type: ignore[no-any-return]

    @router.get("/logs")
    async def logs(after: int = 0, trace: str | None = None, step: str | None = None,
                   level: str | None = None, flow: str | None = None, wait: float = 0,
                   limit: int = 500) -> Json:
        flt = {"trace": trace, "step": step, "level": level, "flow": flow}
        seq, lines = await _telemetry(runtime()).logs(after, flt, min(wait, 25.0), limit)
        return {"seq": seq, "lines": lines}

    @router.get("/traces")
    async def traces(limit: int = 100) -> list[Json]:
        return await _telemetry(runtime()).traces(limit)  # type: ignore[no-any-return]

    @router.get("/traces/{trace_id}")
    async def trace(trace_id: str) -> Json:
        found = await _telemetry(runtime()).trace(trace_id)
        if found is None:
            raise HTTPException(404, f"no trace {trace_id!r} among the recent ones")
        return found  # type: ignore[no-any-return]

    # --- state ----------------------------------------------------------------------------------
    @router.get("/state")
    async def state_groups() -> list[str]:
        return await runtime().state.list_groups()

    @router.get("/state/{group}")
    async def state_items(group: str) -> list[Json]:
        check_ids(group=group)
        return await runtime().state.list(group)

    @router.put("/state/{group}/{key}")
    async def state_set(group: str, key: str, value: Any = Body(...)) -> Json:  # noqa: B008
        check_ids(group=group, item=key)
        value = _plain(value, f"the state item {group}/{key}")
        _, new = await runtime().state.set(group, key, value, WORKBENCH_ORIGIN)
        return {"id": key, "data": new}

    @router.delete("/state/{group}/{key}")
    async def state_delete(group: str, key: str) -> Json:
        check_ids(group=group, item=key)
        old = await runtime().state.delete(group, key, WORKBENCH_ORIGIN)
        if old is None:
            raise HTTPException(404, f"no item {key!r} in {group!r}")
        return {"id": key, "deleted": old}

    # --- streams --------------------------------------------------------------------------------
    def _stream(name: str) -> str:
        if name not in app.streams:
            raise HTTPException(404, f"no stream {name!r}")
        return name

    @router.get("/streams/{name}")
    async def stream_groups(name: str) -> list[str]:
        return await runtime().streams.list_groups(_stream(name))

    @router.get("/streams/{name}/{group}")
    async def stream_items(name: str, group: str) -> list[Any]:
        check_ids(group=group)
        return await runtime().streams.list(_stream(name), group)

    @router.put("/streams/{name}/{group}/{item_id}")
    async def stream_set(name: str, group: str, item_id: str,
                         value: Any = Body(...)) -> Any:  # noqa: B008
        check_ids(group=group, item=item_id)
        value = _plain(value, f"the item {item_id!r} of stream {name!r}")
        _, new = await runtime().streams.set(_stream(name), group, item_id, value,
                                             WORKBENCH_ORIGIN)
        return new

    @router.delete("/streams/{name}/{group}/{item_id}")
    async def stream_delete(name: str, group: str, item_id: str) -> Json:
        check_ids(group=group, item=item_id)
        old = await runtime().streams.delete(_stream(name), group, item_id, WORKBENCH_ORIGIN)
        if old is None:
            raise HTTPException(404, f"no item {item_id!r} in {name}/{group}")
        return {"id": item_id, "deleted": old}

    return router


def mount_workbench(api: FastAPI) -> None:
    """The page itself; mounted after every route so that none is shadowed."""
    @api.get("/_raypipe", include_in_schema=False)
    async def to_workbench() -> RedirectResponse:
        return RedirectResponse("_raypipe/")  # relative: works under a route prefix

    api.mount("/_raypipe", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False),
              name="workbench")
