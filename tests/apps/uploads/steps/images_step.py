"""Takes images as a multipart upload (up to 10 MB) or as JSON; answers what arrived."""

import hashlib

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, Form, StepConfig, http


class Caption(BaseModel):
    caption: str
    copies: int = 1


config = StepConfig(
    name="images",
    triggers=[http("POST", "/images", body_schema=Caption,
                   accepts=["multipart/form-data"], max_body_bytes=10 << 20)],
    enqueues=["image.received"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    body = request.body
    if not isinstance(body, Form):  # JSON: the caption alone
        return {"status": 200, "body": {"caption": body.caption, "files": []}}
    files = [{"field": f.field, "filename": f.filename, "type": f.content_type,
              "size": f.size, "sha256": hashlib.sha256(f.data).hexdigest()} for f in body.files]
    await ctx.enqueue("image.received", {"count": len(files)})
    return {"status": 200, "body": {"caption": body.fields.caption,
                                    "copies": body.fields.copies, "files": files}}
