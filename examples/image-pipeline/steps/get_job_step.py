"""A job's progress."""

from raypipe import ApiRequest, FlowContext, StepConfig, http

config = StepConfig(name="get-job", triggers=[http("GET", "/jobs/:jobId")], flows=["images"])


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    job = await ctx.state.get("jobs", request.path_params["jobId"])
    if job is None:
        return {"status": 404, "body": {"error": "no such job"}}
    return {"status": 200, "body": {"total": job["total"], "done": job["done"],
                                    "status": job["status"]}}
