from pydantic import BaseModel
from shared import work

from raypipe import FlowContext, StepConfig, queue


class Work(BaseModel):
    run: str
    i: int


config = StepConfig(name="fanout-work", triggers=[queue("bench.work", input=Work)])


async def handler(msg: Work, ctx: FlowContext) -> None:
    await ctx.state.update("runs", msg.run, [{"type": "increment", "path": "done"},
                                             {"type": "increment", "path": "sum",
                                              "by": work(msg.i)}])
