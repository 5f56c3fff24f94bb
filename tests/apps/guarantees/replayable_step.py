"""Makes all three kinds of effect (a state update, a stream write, an enqueue), then fails
until the flag ("flags", "replayable-fixed") is set: dead-lettered, then replayed."""

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="replayable", triggers=[queue("replayable", config=QueueConfig(
    max_retries=1, backoff="fixed", backoff_delay_ms=20))], enqueues=["replayable.after"])


async def handler(msg: dict, ctx: FlowContext) -> None:
    await ctx.state.update("replay-counts", msg["id"], [{"type": "increment", "path": "n"}])
    await ctx.streams.tallies.update("replay", msg["id"], [{"type": "increment", "path": "n"}])
    await ctx.enqueue("replayable.after", {"id": msg["id"]})
    if not await ctx.state.get("flags", "replayable-fixed"):
        raise RuntimeError(f"not fixed yet (attempt {ctx.attempt})")
    await ctx.state.set("replayable-done", msg["id"], ctx.attempt)
