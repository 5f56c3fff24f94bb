"""Returns a body its response schema rejects: the client gets a 500, not a wrong shape."""

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class Reply(BaseModel):
    ok: bool


config = StepConfig(name="bad-response",
                    triggers=[http("GET", "/bad-response", response_schema={200: Reply})])


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    return {"status": 200, "body": {"ok": "not a bool at all"}}
