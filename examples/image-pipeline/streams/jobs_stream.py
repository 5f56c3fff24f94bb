"""The `jobs` stream: each job's progress, live."""

from pydantic import BaseModel

from raypipe import StreamConfig


class Job(BaseModel):
    total: int
    done: int = 0
    status: str = "running"


config = StreamConfig(name="jobs", schema=Job, description="Image jobs' progress")
