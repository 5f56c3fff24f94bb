"""Fails until state says it is fixed: its message (and the reference in it) waits in the
dead letters, to be replayed later, when the value may be only in the blob store."""

import hashlib

from raypipe import QueueConfig, StepConfig, http, queue

config = StepConfig(
    name="fragile",
    triggers=[http("POST", "/refs/fragile"), queue("refs.fragile", config=QueueConfig(
        max_retries=0))],
    enqueues=["refs.fragile"])


async def handler(input, ctx):
    if ctx.is_api():
        ref = await ctx.put(input.body["text"].encode())
        await ctx.enqueue("refs.fragile", {"id": input.body["id"], "ref": ref})
        return {"status": 202, "body": {"ref": ref}}
    value = await ctx.get(input["ref"])
    if not await ctx.state.get("refs", "fixed"):
        raise RuntimeError("not fixed yet")
    await ctx.state.set("refs", input["id"], {"sha_seen": hashlib.sha256(value).hexdigest()})
