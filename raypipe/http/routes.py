"""An http step's route: its body read and validated, its middleware and handler run, its
answer checked and rendered (:mod:`raypipe.http.app` puts the routes in the FastAPI app).

Bodies are validated here, before any handler runs, so invalid input gets FastAPI's own 422
shape (``{"detail": [{"loc": ["body", field], "msg", "type"}]}``). Ray-free: the runtime is
handed in, so the same app runs in a Serve replica or under plain uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import CodeType
from typing import Any, cast

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from raypipe import constants
from raypipe import triggers as t
from raypipe.app import App
from raypipe.calls import current
from raypipe.context import FlowContext
from raypipe.errors import BackendUnavailableError, SchemaValidationError
from raypipe.handlers import call_handler
from raypipe.http.bodies import read_body
from raypipe.http.streaming import ResponseStream
from raypipe.http.unavailable import unavailable
from raypipe.messages import new_id
from raypipe.models import ApiRequest, ApiResponse
from raypipe.runtime_protocols import Runtime, TelemetrySink
from raypipe.schemas import Schema, dump_json
from raypipe.state.change import StateChange
from raypipe.steps import Step
from raypipe.trigger_kind import TriggerKind

__all__ = ["StepRoute", "endpoint"]

log = logging.getLogger("raypipe.http")


def _query_params(request: Request) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    if not request.scope.get("query_string"):
        return out
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    return out


def _response_schema(tr: t.HttpTrigger, status: int) -> Schema | None:
    rs = tr.response_schema
    if isinstance(rs, Mapping):
        return rs.get(status)  # type: ignore[no-any-return]
    return rs if 200 <= status < 300 else None  # type: ignore[no-any-return]


def _path(request: Request) -> str:
    """``request.url.path`` without building the whole URL (host header, query; ~15 us a
    request): the same escapes of what would split a URL."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _render(resp: ApiResponse[Any], trace_id: str) -> Response:
    headers = {**resp.headers, constants.TRACE_HEADER: trace_id}
    if resp.body is None or resp.status in (204, 304) or resp.status < 200:
        # No body may follow these statuses (Motia apps answer 204 with body "").
        return Response(status_code=resp.status, headers=headers)
    ctype = {k.lower(): v for k, v in resp.headers.items()}.get("content-type", "")
    if isinstance(resp.body, bytes) or (isinstance(resp.body, str) and ctype
                                        and "json" not in ctype):
        return Response(resp.body, status_code=resp.status, headers=headers)
    try:
        # Plain JSON data (most bodies) as JSONResponse would write it, without
        # jsonable_encoder's walk over it; anything else (models, dates, ...) goes through it.
        return Response(json.dumps(resp.body, ensure_ascii=False, allow_nan=False,
                                   separators=(",", ":")).encode(),
                        status_code=resp.status, headers=headers, media_type="application/json")
    except (TypeError, ValueError):
        pass
    try:
        # A state or stream change (``return await stream.set(...)``) reads as Motia 1.x's.
        content = jsonable_encoder(resp.body, custom_encoder={StateChange: StateChange.to_dict})
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the response body (a {type(resp.body).__name__}) is not "
                        f"JSON-serialisable: {exc}") from exc
    return JSONResponse(content, status_code=resp.status, headers=headers)


Handler = Callable[[], Awaitable[Any]]


async def _run_middleware(
    middleware: Sequence[Callable[..., Any]], req: ApiRequest[Any], ctx: FlowContext,
    last: Handler
) -> Any:
    """Motia's ``middleware(req, ctx, next)`` chain; ``next()`` runs the rest."""
    async def call(i: int) -> Any:
        if i == len(middleware):
            return await last()
        result = middleware[i](req, ctx, lambda: call(i + 1))
        return await result if isinstance(result, Awaitable) else result

    return await call(0)


class _HttpSpan:
    """An HTTP step call as a span of its trace (when the runtime keeps telemetry)."""

    def __init__(self, rt: Runtime, step: Step, trace_id: str, method: str, path: str) -> None:
        self.sink: TelemetrySink | None = getattr(rt, "telemetry", None)
        self.span = {"trace_id": trace_id, "id": f"http:{trace_id}", "step": step.name,
                     "kind": TriggerKind.HTTP.value, "topic": f"{method} {path}", "attempt": 1,
                     "start": time.time() * 1000}

    def end(self, status: int, error: str | None = None) -> None:
        if self.sink is not None:
            outcome = "error" if status >= 500 else "ok"
            self.sink.record((), [{**self.span, "end": time.time() * 1000, "status": status,
                                   "outcome": outcome, "error": error}])


def _may_stream(handler: Any) -> bool:
    """Whether a handler may stream its response: it names ``response`` (``args.response``)
    in its code or a function nested in it. Such a handler runs in a task of its own, so its
    response can start before it returns; the others skip that task's cost (~20 us)."""
    def names(code: CodeType) -> bool:
        return "response" in code.co_names or any(
            isinstance(c, CodeType) and names(c) for c in code.co_consts)

    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    return code is None or names(code)


def endpoint(app: App, step: Step, tr: t.HttpTrigger,
              runtime: Callable[[], Runtime]) -> Callable[[Request], Awaitable[Response]]:
    streams = _may_stream(step.handler)

    async def endpoint(request: Request) -> Response:
        trace_id = request.headers.get(constants.TRACE_HEADER) or new_id()
        raw = await request.body()
        try:
            body = await read_body(request, raw, tr, app.settings.max_json_depth)
        except SchemaValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]) from None
        path = _path(request)
        req: ApiRequest[Any] = ApiRequest(
            body=body, path_params=dict(request.path_params), query_params=_query_params(request),
            headers=dict(request.headers), raw_body=raw, method=request.method, path=path)
        rt = runtime()
        ctx = FlowContext(app, rt, step=step, trace_id=trace_id, trigger=tr)
        span = _HttpSpan(rt, step, trace_id, request.method, path)

        async def answer() -> Response | None:
            current.set(ctx)  # for Motia's module-level helpers in conditions and middleware
            if not await t.check_condition(tr.condition, req, ctx):
                return JSONResponse({"error": "Not Found"}, 404,
                                    {constants.TRACE_HEADER: trace_id})
            result = await _run_middleware(tr.middleware, req, ctx,
                                           lambda: call_handler(step.handler, req, ctx))
            await ctx.settle()  # what middleware left un-awaited
            if req.response is not None and req.response.used:
                return None  # streamed
            resp = ApiResponse.coerce(result)
            _check_response(step, tr, resp, ctx)
            span.end(resp.status)
            return _render(resp, trace_id)

        def failed(exc: BaseException) -> Response:
            if isinstance(exc, BackendUnavailableError):
                span.end(503, str(exc))
                ctx.logger.warn("answered 503", error=str(exc))
                return unavailable(exc, {constants.TRACE_HEADER: trace_id})
            span.end(500, f"{type(exc).__name__}: {exc}")
            ctx.logger.error("request failed", error=f"{type(exc).__name__}: {exc}")
            log.error("step %r failed on %s %s", step.name, request.method, path,
                      exc_info=exc)
            return JSONResponse({"error": "Internal Server Error", "traceId": trace_id}, 500,
                                {constants.TRACE_HEADER: trace_id})

        if not streams:
            try:
                done = await answer()
            except Exception as exc:
                return failed(exc)
            assert done is not None
            return done
        stream = req.response = ResponseStream(app.settings.max_body_bytes)
        task = asyncio.ensure_future(answer())
        either = asyncio.ensure_future(stream.started.wait())
        await asyncio.wait({task, either}, return_when=asyncio.FIRST_COMPLETED)
        either.cancel()
        if task.done() and not stream.used:
            try:
                done = task.result()
            except Exception as exc:
                return failed(exc)
            assert done is not None
            return done
        task.add_done_callback(lambda t: _streamed(t, span, stream.status_code, failed))
        return StreamingResponse(stream.body(task), status_code=stream.status_code,
                                 headers={**stream.header_values,
                                          constants.TRACE_HEADER: trace_id})

    endpoint.__name__ = step.name.replace("-", "_")
    return endpoint


def _streamed(task: asyncio.Task[Any], span: _HttpSpan, status: int,
              failed: Callable[[BaseException], Any]) -> None:
    """A streamed response's handler ended: its span ends, its error is logged (the client
    has its status already)."""
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        failed(exc)
    else:
        span.end(status)


def _check_response(step: Step, tr: t.HttpTrigger, resp: ApiResponse[Any],
                    ctx: FlowContext) -> None:
    """The response against its schema: a 500 for raypipe's steps, a warning for Motia's
    (unless ``strict``), as Motia did."""
    schema = _response_schema(tr, resp.status)
    if schema is None:
        return
    try:
        schema.validate(dump_json(resp.body), what=f"response {resp.status}")
    except SchemaValidationError as exc:
        if not step.lenient:
            raise
        ctx.logger.warn("the response does not match its responseSchema; sent anyway, as "
                        "Motia does (strict = true makes it a 500)", status=resp.status,
                        errors=str(exc))


class StepRoute(APIRoute):
    """An http step's route: in the OpenAPI document like any FastAPI route, but its endpoint
    takes the request and makes the response itself, so FastAPI's per-request dependency
    solving and response serialisation, with nothing to do here, are skipped (FastAPI's
    share of the ingress replica's profile in bench/http_step.py: 25% before, 18-21% after)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)
