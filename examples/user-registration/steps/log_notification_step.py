"""On `email.sent`: store a notification log entry and count the user's notifications."""

import time
from datetime import datetime, timezone

from pydantic import BaseModel

from raypipe import FlowContext


class EmailSent(BaseModel):
    userId: str
    email: str
    type: str
    sentAt: str


config = {
    "type": "event",
    "name": "LogNotification",
    "description": "Log all email notifications and store notification history",
    "flows": ["user-registration"],
    "subscribes": ["email.sent"],
    "emits": [],
    "input": EmailSent,
}


async def handler(input: EmailSent, ctx: FlowContext) -> None:
    ctx.logger.info("Logging notification", userId=input.userId, type=input.type,
                    email=input.email)

    notification_log = {
        "userId": input.userId,
        "email": input.email,
        "type": input.type,
        "sentAt": input.sentAt,
        "loggedAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    log_id = f"{input.userId}-{input.type}-{int(time.time() * 1000)}"
    await ctx.state.set("notification-logs", log_id, notification_log)

    counts = await ctx.state.get("notification-counts", input.userId) or {"count": 0}
    await ctx.state.set("notification-counts", input.userId, {
        "count": counts["count"] + 1,
        "lastNotification": input.sentAt,
    })
    ctx.logger.info("Notification logged successfully", userId=input.userId, logId=log_id)
