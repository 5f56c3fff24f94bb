"""GET /greetings: the stream's greetings (the SDK's earlier async style)."""

from typing import Any

from motia import ApiRequest, ApiResponse, FlowContext, Stream, http

from .shared import GROUP

greetings: Stream[dict[str, Any]] = Stream("greetings")

config = {
    "name": "ListGreetings",
    "triggers": [http("GET", "/greetings")],
    "enqueues": [],
    "flows": ["greetings"],
}


async def handler(request: ApiRequest[Any], ctx: FlowContext[Any]) -> ApiResponse[Any]:
    items = await greetings.get_group(GROUP)
    return ApiResponse(status=200, body={"greetings": sorted(i["name"] for i in items),
                                         "trace": ctx.trace_id})
