"""POST /sse with a URL-encoded body: answers with server-sent events, one per field."""

import json
from typing import Any
from urllib.parse import parse_qsl

from motia import MotiaHttpArgs, http

config = {
    "name": "SSE",
    "triggers": [http("POST", "/sse")],
    "enqueues": [],
}


async def handler(args: MotiaHttpArgs[Any]) -> None:
    request, response = args.request, args.response
    await response.status(200)
    await response.headers({"content-type": "text/event-stream", "cache-control": "no-cache"})
    raw = b"".join(chunk for chunk in request.request_body.stream).decode()
    fields = parse_qsl(raw, keep_blank_values=True)
    for name, value in fields:
        item = {"name": name, "value": value}
        response.writer.stream.write(f"event: item\ndata: {json.dumps(item)}\n\n".encode())
    response.writer.stream.write(f"event: done\ndata: {json.dumps({'total': len(fields)})}\n\n")
    response.close()
