async def enrich(req, context, next):
    req["enriched"] = "yes"
    response = await next()
    response["headers"] = {**(response.get("headers") or {}), "x-enriched": req["enriched"]}
    return response
