# A static route beside /greetings/:name; its response does not match its responseSchema and
# it emits a topic it did not declare: Motia only warned of both.
config = {
    "type": "api",
    "name": "Summary",
    "path": "/greetings/summary",
    "method": "GET",
    "emits": [],
    "responseSchema": {200: {"type": "object", "required": ["count"],
                             "properties": {"count": {"type": "integer"}}}},
}


async def handler(req, context):
    values = await context.state.get_group("greetings")
    await context.emit({"topic": "undeclared", "data": {}})
    return {"status": 200, "body": {"names": sorted(v["name"] for v in values)}}
