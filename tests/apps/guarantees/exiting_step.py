"""Records each run in a file (one line per run), then ends its process: ``sys.exit(3)``, or
``os._exit(4)`` when the message says ``hard``."""

import os
import sys

from raypipe import FlowContext, QueueConfig, StepConfig, queue

config = StepConfig(name="exiting", triggers=[queue("exits", config=QueueConfig(
    max_retries=1, backoff="fixed", backoff_delay_ms=20))])


async def handler(msg: dict, ctx: FlowContext) -> None:
    with open(msg["runs"], "a") as f:
        f.write(f"{ctx.attempt} {os.getpid()}\n")
    if msg.get("hard"):
        os._exit(4)
    sys.exit(3)
