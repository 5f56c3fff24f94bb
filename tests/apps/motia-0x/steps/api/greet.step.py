# Motia 0.x Python: a dict config, a dict-style request, middleware, un-awaited calls.
from .helpers.text import greeting_text
from .middleware import enrich

config = {
    "type": "api",
    "name": "Greet",
    "path": "/greetings/:name",
    "method": "POST",
    "emits": ["greeted"],
    "middleware": [enrich],
    "flows": ["greetings"],
}


async def handler(req, context):
    name = req.get("pathParams")["name"]
    body = req.get("body") or {}
    # Not awaited: Motia 0.x scheduled these; they apply before the response goes out.
    context.state.set("greetings", name, {"name": name, "mood": body.get("mood")})
    context.streams.greetings.set("all", name, {"text": greeting_text(name)})
    item = await context.streams.greetings.set("latest", "one", {"text": greeting_text(name)})
    await context.emit({"topic": "greeted", "data": {"name": name}})
    return {"status": 201, "body": {"item": item, "enriched": req["enriched"],
                                    "query": req["queryParams"], "raw": req["rawBody"]}}
