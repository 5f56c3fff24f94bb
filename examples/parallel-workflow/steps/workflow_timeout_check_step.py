"""Every 5 minutes, report workflows that have been running for more than 30 minutes."""

import time

from raypipe import FlowContext, StepConfig, cron

TIMEOUT_MS = 30 * 60 * 1000

config = StepConfig(
    name="workflow-timeout-check",
    description="Detects stuck workflows",
    triggers=[cron("*/5 * * * *")],
    flows=["workflow-orchestration"],
)


async def handler(_: None, ctx: FlowContext) -> None:
    now = int(time.time() * 1000)
    for item in await ctx.state.items("workflows"):
        data = item["data"]
        if data.get("completedSteps", 0) < data.get("totalSteps", 0):
            age = now - data.get("startedAt", now)
            if age > TIMEOUT_MS:
                ctx.logger.error("Workflow timeout detected", workflowId=item["id"], age=age)
