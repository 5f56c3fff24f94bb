"""Step 5: completion by stream trigger, when the last step's update lands."""

import time

from raypipe import FlowContext, StepConfig, StreamTriggerInput, stream


def all_done(input: StreamTriggerInput) -> bool:
    data = input.event.data
    return (
        input.event.type == "update"
        and data["completedSteps"] == data["totalSteps"]
        and data.get("status") != "completed"  # our own write below changes the item again
    )


config = StepConfig(
    name="stream-workflow-completion",
    description="Handles stream workflow completion",
    triggers=[stream("workflows", group_id="active-workflows", condition=all_done)],
    flows=["workflow-orchestration"],
)


async def handler(request: StreamTriggerInput, ctx: FlowContext) -> None:
    workflow_id = request.id
    data = request.event.data
    duration = int(time.time() * 1000) - data["startedAt"]
    ctx.logger.info("Stream workflow completed!", workflowId=workflow_id,
                    totalSteps=data["totalSteps"], duration=duration)
    await ctx.streams.workflows.update("active-workflows", workflow_id, [
        {"type": "set", "path": "status", "value": "completed"},
    ])

    print("╔════════════════════════════════════════════════════════╗")
    print("║      STREAM WORKFLOW COMPLETED SUCCESSFULLY!           ║")
    print("╠════════════════════════════════════════════════════════╣")
    print(f"║  Workflow ID: {workflow_id[:30]:<30}  ║")
    print(f"║  Total Steps: {data['totalSteps']!s:<39} ║")
    print(f"{'║  Duration: ' + str(duration) + 'ms':<56}║")
    print("╚════════════════════════════════════════════════════════╝")
