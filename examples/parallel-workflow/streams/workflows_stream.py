"""The `workflows` stream: live progress of stream-based workflows."""

from pydantic import BaseModel

from raypipe import StreamConfig


class WorkflowItem(BaseModel):
    totalSteps: int
    completedSteps: int = 0
    startedAt: int
    status: str = "running"


config = StreamConfig(name="workflows", schema=WorkflowItem,
                      description="Progress of workflows started at /api/workflow/stream/start")
