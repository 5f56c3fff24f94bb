"""Step 3: when every task has reported, aggregate the results (a state trigger)."""

import time

from raypipe import FlowContext, StateTriggerInput, StepConfig, state


def all_steps_done(change: StateTriggerInput) -> bool:
    new = change.new_value
    return (
        change.group_id == "workflows"
        and bool(new)
        and new.get("totalSteps") == new.get("completedSteps")
        # Writing the result below changes the item again; it must not fire a second time.
        and new.get("status") != "completed"
    )


config = StepConfig(
    name="workflow-completion",
    description="Handles workflow completion when all steps finish",
    triggers=[state(condition=all_steps_done)],
    enqueues=["workflow.completed"],
    flows=["workflow-orchestration"],
)


async def handler(change: StateTriggerInput, ctx: FlowContext) -> None:
    workflow_id = change.item_id
    result = change.new_value
    end = int(time.time() * 1000)
    duration = end - result["startedAt"]
    ctx.logger.info("Workflow completed!", workflowId=workflow_id,
                    totalSteps=result["totalSteps"], duration=duration)

    values = [s["result"]["value"] for s in result["steps"].values()]
    aggregated = {
        "totalValue": sum(values),
        "averageValue": sum(values) / len(values) if values else 0,
        "completionRate": 100,
        "duration": duration,
    }
    ctx.logger.info("Aggregated results", workflowId=workflow_id, **aggregated)

    await ctx.state.update("workflows", workflow_id, [
        {"type": "set", "path": "status", "value": "completed"},
        {"type": "set", "path": "completedAt", "value": end},
        {"type": "set", "path": "results", "value": aggregated},
    ])
    await ctx.enqueue("workflow.completed", {
        "workflowId": workflow_id,
        "startedAt": result["startedAt"],
        "completedAt": end,
        "duration": duration,
        "totalSteps": result["totalSteps"],
        "results": aggregated,
        "steps": result["steps"],
    })

    print("╔════════════════════════════════════════════════════════╗")
    print("║         WORKFLOW COMPLETED SUCCESSFULLY!               ║")
    print("╠════════════════════════════════════════════════════════╣")
    print(f"║  Workflow ID: {workflow_id[:30]:<30}  ║")
    print(f"║  Total Steps: {result['totalSteps']!s:<39} ║")
    print(f"{'║  Duration: ' + str(duration) + 'ms':<56}║")
    print(f"║  Total Value: {aggregated['totalValue']:<36.2f} ║")
    print("╚════════════════════════════════════════════════════════╝")
