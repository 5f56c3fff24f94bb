"""Fails on its first two attempts (flaky) or always (doomed): retries, then dead letters."""

from raypipe import FlowContext, QueueConfig, StepConfig, queue

FAST = QueueConfig(max_retries=2, backoff="fixed", backoff_delay_ms=50)

config = StepConfig(
    name="failing",
    triggers=[queue("flaky", config=FAST), queue("doomed", config=QueueConfig(
        max_retries=1, backoff_delay_ms=20))],
)


async def handler(msg: dict, ctx: FlowContext) -> None:
    # One item per attempt: the same write repeated by a retry would be deduplicated.
    await ctx.state.set("attempts", f"{msg['id']}:{ctx.attempt}", ctx.trace_id)
    if ctx.trigger.topic == "doomed" or ctx.attempt < 3:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
