from raypipe import ApiRequest, ApiResponse, FlowContext, StepConfig, http

config = StepConfig(name="ping", triggers=[http("GET", "/ping")])


async def handler(req: ApiRequest, ctx: FlowContext) -> ApiResponse:
    return ApiResponse(200, {"ok": True})
