"""GET /greetings/summary, and every second (7 fields: seconds first, years last): one handler
for both triggers, through ctx.match."""

from typing import Any

from motia import ApiRequest, ApiResponse, FlowContext, Stream, cron, http, stateManager

from .shared import GROUP

greetings: Stream[dict[str, Any]] = Stream("greetings")

config = {
    "name": "GreetingsSummary",
    "triggers": [http("GET", "/greetings/summary"), cron("* * * * * * *")],
    "enqueues": [],
    "flows": ["greetings"],
}


def handler(input_data: Any, ctx: FlowContext[Any]) -> Any:
    def summary_api(request: ApiRequest[Any]) -> ApiResponse[dict[str, Any]]:
        return ApiResponse(status=200, body={"count": len(greetings.get_group(GROUP)),
                                             "via": ctx.trigger.type})

    def summary_cron() -> None:
        stateManager.set("summaries", "latest", {"count": len(greetings.get_group(GROUP))})

    return ctx.match({"http": summary_api, "cron": summary_cron})
