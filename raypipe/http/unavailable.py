"""Answers for a request whose backend cannot serve it: 503 with ``Retry-After`` naming the
part (the state, streams or dispatcher actor) that did not answer, 422 for an id that cannot
be stored."""


from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from raypipe.errors import BackendUnavailableError

__all__ = ["RETRY_AFTER_SECONDS", "invalid_id_handler", "unavailable", "unavailable_handler"]

#: Seconds a client is told to wait before it asks again after a 503 (``Retry-After``).
RETRY_AFTER_SECONDS = 5


def unavailable(exc: BackendUnavailableError, headers: dict[str, str] | None = None
                ) -> JSONResponse:
    """503 naming the part that did not answer: what needs it waits for it to be back."""
    return JSONResponse({"error": "Service Unavailable", "detail": str(exc), "part": exc.part},
                        503, {"retry-after": str(RETRY_AFTER_SECONDS), **(headers or {})})


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendUnavailableError)
    return unavailable(exc)


async def invalid_id_handler(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, 422)


