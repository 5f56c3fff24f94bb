"""Takes any image or raw bytes (up to 8 MB) and answers bytes of its own content type."""

config = {
    "name": "raw",
    "triggers": [{"type": "http", "method": "POST", "path": "/raw/:name",
                  "accepts": ["application/octet-stream", "image/*"],
                  "maxBodyBytes": 8 << 20}],
}


async def handler(request, ctx):
    data = request.body
    return {"status": 200, "body": bytes(reversed(data)),
            "headers": {"content-type": "application/x-reversed",
                        "x-received-type": request.headers.get("content-type", "")}}
