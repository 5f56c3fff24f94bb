"""POST /farewell/:name: the SDK's earliest style, everything through ctx."""

from typing import Any

from motia import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "Farewell",
    "triggers": [http("POST", "/farewell/:name")],
    "enqueues": ["greeted"],
    "flows": ["greetings"],
}


async def handler(request: ApiRequest[Any], ctx: FlowContext[Any]) -> ApiResponse[Any]:
    name = request.path_params["name"]
    change = await ctx.state.set("farewells", name, {"name": name})
    item = await ctx.streams["greetings"].set("default", name,
                                             {"name": name, "message": f"Bye, {name}!"})
    await ctx.enqueue({"topic": "greeted", "data": {"name": name}})
    ctx.logger.info("Farewell stored", {"name": name, "trace": ctx.trace_id})
    return ApiResponse(status=201, body={"stored": change["new_value"],
                                         "item": item["new_value"]})
