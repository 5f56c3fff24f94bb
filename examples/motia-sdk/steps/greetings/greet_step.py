"""GET /greet?name=...: stores a greeting in a stream and tells the reactions (sync style)."""

from typing import Any

from motia import ApiRequest, ApiResponse, Stream, enqueue, http, logger

from .shared import GROUP, first, greeting

greetings: Stream[dict[str, Any]] = Stream("greetings")

config = {
    "name": "Greet",
    "description": "Greet and store the greeting in a stream",
    "triggers": [http("GET", "/greet")],
    "enqueues": ["greeted"],
    "flows": ["greetings"],
}


def handler(request: ApiRequest[Any]) -> ApiResponse[dict[str, Any]]:
    name = first(request.query_params.get("name")) or "world"
    change = greetings.set(GROUP, name, greeting(name))
    enqueue({"topic": "greeted", "data": {"name": name}})
    logger.info("Greeting stored", {"name": name})
    return ApiResponse(status=200, body={"greeting": change["new_value"],
                                         "first": change.old_value is None})
