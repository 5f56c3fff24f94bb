"""Writes one field of an item with many (its write answers without the item's values), then
reads what the write returned: the values are fetched only then."""

from raypipe import FlowContext, StepConfig, queue

config = StepConfig(name="big-item", triggers=[queue("big-item")])


async def handler(msg: dict, ctx: FlowContext) -> None:
    change = await ctx.state.update("big", msg["id"], [
        {"type": "set", "path": f"entries.{msg['i']}", "value": {"i": msg["i"]}}])
    if msg.get("read"):
        old, new = change
        await ctx.state.set("big-read", msg["id"], {
            "old": len((old or {}).get("entries", {})), "new": len(new["entries"]),
            "same": change.new_value == new})
