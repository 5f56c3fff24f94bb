"""A form step with the app's default body limit (1 MiB)."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(
    name="small",
    triggers=[http("POST", "/small", accepts=["multipart/form-data"])],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    return {"status": 200, "body": {"files": len(request.body.files)}}
