"""Streamed responses from http steps: Motia 1.x's ``MotiaHttpResponse`` (``args.response``)
onto Starlette's ``StreamingResponse``, for server-sent events and other long answers.

A handler sets the status and headers, then writes chunks; the response starts at the first
chunk (or at ``close()``), so headers set before it are sent. Writes work from the handler's
loop and from a plain ``def`` handler's thread alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from raypipe.errors import LimitError, UsageError

__all__ = ["ResponseStream"]

_END = object()


class _Writer:
    """``response.writer``: ``writer.stream.write(chunk)`` and ``writer.close()``."""

    def __init__(self, response: ResponseStream) -> None:
        self._response = response
        self.stream = self

    def write(self, chunk: bytes | str) -> None:
        self._response.write(chunk)

    def close(self) -> None:
        self._response.close()


class ResponseStream:
    """One request's response, written by its handler as it goes."""

    def __init__(self, max_chunk_bytes: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._chunks: asyncio.Queue[Any] = asyncio.Queue()
        self._max = max_chunk_bytes
        self.started = asyncio.Event()
        self.status_code = 200
        self.header_values: dict[str, str] = {}
        self.closed = False

    @property
    def used(self) -> bool:
        """Whether the handler wrote anything or closed the response."""
        return self.started.is_set()

    async def status(self, status_code: int) -> None:
        self.status_code = int(status_code)

    async def headers(self, headers: Mapping[str, str]) -> None:
        self.header_values.update({str(k): str(v) for k, v in headers.items()})

    @property
    def writer(self) -> _Writer:
        return _Writer(self)

    def write(self, chunk: bytes | str) -> None:
        if self.closed:
            raise UsageError("the response was closed; nothing more can be written")
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        if len(data) > self._max:
            raise LimitError(f"a chunk of {len(data)} bytes is over the limit of {self._max}")
        self._loop.call_soon_threadsafe(self._put, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.call_soon_threadsafe(self._put, _END)

    def _put(self, item: Any) -> None:
        self._chunks.put_nowait(item)
        self.started.set()

    async def body(self, handler: asyncio.Task[Any]) -> AsyncIterator[bytes]:
        """The chunks as written, until ``close()`` or the handler's end."""
        ended = asyncio.ensure_future(asyncio.shield(handler))
        try:
            while True:
                if handler.done() and self._chunks.empty():
                    return
                get = asyncio.ensure_future(self._chunks.get())
                await asyncio.wait({get, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    continue
                item = get.result()
                if item is _END:
                    return
                yield item
        finally:
            if ended.done() and not ended.cancelled():
                ended.exception()  # the handler's error is logged by the endpoint, not here
            ended.cancel()
