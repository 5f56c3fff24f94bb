from raypipe import StepConfig, cron

config = StepConfig(
    name="workflow-timeout-check",
    description="Detects stuck workflows",
    triggers=[cron("*/5 * * * *")],
    flows=["workflow-orchestration"],
)


async def handler(_, ctx):
    return None
