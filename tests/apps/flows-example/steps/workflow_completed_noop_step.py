"""Where `workflow.completed` goes: outside this app. Drawn in the flow diagram only."""

from raypipe import StepConfig

config = StepConfig(
    name="workflow-completed-consumers",
    description="Downstream consumers of workflow.completed (not part of this app)",
    virtual_subscribes=["workflow.completed"],
    flows=["workflow-orchestration"],
)
