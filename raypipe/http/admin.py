"""raypipe's own endpoints under ``/_raypipe``: health and the dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from raypipe.app import App
from raypipe.runtime_protocols import Runtime

__all__ = ["admin_router"]


def admin_router(app: App, runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(prefix="/_raypipe", tags=["raypipe"])

    @router.get("/health", responses={503: {"description": "a part of the app is down"}})
    async def health() -> Any:
        """200 while the state backend and the dispatcher answer; 503 naming what does not."""
        body: dict[str, Any] = {"app": app.name, "version": app.version,
                                "steps": len(app.steps)}
        check = getattr(runtime(), "health", None)
        if check is None:  # a runtime without parts to check (in-process)
            return body
        parts: dict[str, str] = await check()
        body["checks"] = parts
        if any(v != "ok" for v in parts.values()):
            return JSONResponse(body, status_code=503)
        return body

    @router.get("/dlq", summary="List dead letters")
    async def list_dead_letters() -> list[dict[str, Any]]:
        return await runtime().dead_letters.list()

    @router.get("/dlq/{entry_id}", summary="One dead letter, with every attempt's error")
    async def get_dead_letter(entry_id: str) -> dict[str, Any]:
        entry = await runtime().dead_letters.get(entry_id)
        if entry is None:
            raise HTTPException(404, f"no dead letter {entry_id!r}")
        return entry

    @router.post("/dlq/replay", summary="Replay every dead letter")
    async def replay_all() -> dict[str, Any]:
        return {"replayed": await runtime().dead_letters.replay(None)}

    @router.post("/dlq/{entry_id}/replay", summary="Run a dead letter again, as the same delivery")
    async def replay_one(entry_id: str) -> dict[str, Any]:
        replayed = await runtime().dead_letters.replay([entry_id])
        if not replayed:
            raise HTTPException(404, f"no dead letter {entry_id!r}")
        return {"replayed": replayed}

    return router
