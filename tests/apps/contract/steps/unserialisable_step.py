"""Returns a body that cannot be JSON: a clear error in the log, a 500 for the client."""

from raypipe import ApiRequest, FlowContext, StepConfig, http


class Opaque:
    __slots__ = ()


config = StepConfig(name="unserialisable", triggers=[http("GET", "/unserialisable")])


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    return {"status": 200, "body": {"thing": Opaque()}}
