# A 0.x cron handler takes the context alone.
import os

config = {
    "type": "cron",
    "name": "Tick",
    "cron": "* * * * * *",
    "emits": [],
}


async def handler(context):
    await context.state.set("ticks", "last", {"title": os.environ.get("APP_TITLE")})
