import hashlib

from raypipe import StepConfig, queue

from .arrays import digest

config = StepConfig(name="sink", triggers=[queue("refs.sink")])


async def handler(msg, ctx):
    value = await ctx.get(msg["ref"])
    seen = (hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else digest(value))
    record = {"sha_sent": msg["sha"], "sha_seen": seen, "type": msg["ref"]["type"],
              "size": msg["ref"]["size"]}
    if msg.get("keep"):
        record["ref"] = msg["ref"]  # held for as long as this item names it
    await ctx.state.set("refs", msg["id"], record)
