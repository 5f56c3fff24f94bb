"""GET /greetings/:name: one greeting (a static route, /greetings/summary, wins over it)."""

from typing import Any

from motia import ApiRequest, ApiResponse, Stream, http

from .shared import GROUP

greetings: Stream[dict[str, Any]] = Stream("greetings")

config = {
    "name": "GetGreeting",
    "triggers": [http("GET", "/greetings/:name")],
    "enqueues": [],
}


def handler(request: ApiRequest[Any]) -> ApiResponse[Any]:
    item = greetings.get(GROUP, request.path_params["name"])
    if item is None:
        return ApiResponse(status=404, body={"error": "no such greeting"})
    return ApiResponse(status=200, body=item)
