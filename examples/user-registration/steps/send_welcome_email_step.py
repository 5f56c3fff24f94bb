"""On `user.registered`: send (simulate) the welcome email, record it, emit `email.sent`."""

import asyncio
from datetime import datetime, timezone

from pydantic import BaseModel

from raypipe import FlowContext


class RegisteredUser(BaseModel):
    userId: str
    name: str
    email: str


config = {
    "type": "event",
    "name": "SendWelcomeEmail",
    "description": "Send welcome email to newly registered users",
    "flows": ["user-registration"],
    "subscribes": ["user.registered"],
    "emits": ["email.sent"],
    "input": RegisteredUser,
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def handler(input: RegisteredUser, ctx: FlowContext) -> None:
    ctx.logger.info("Sending welcome email", userId=input.userId, email=input.email)

    email_data = {
        "to": input.email,
        "subject": "Welcome to Our Platform!",
        "body": f"Hello {input.name},\n\nWelcome to our platform!",
    }
    await asyncio.sleep(1.0)  # simulate sending the email
    ctx.logger.info("Email sent successfully", userId=input.userId, email=input.email)

    await ctx.state.set("emails", f"welcome-{input.userId}", {
        "userId": input.userId,
        "email": input.email,
        "type": "welcome",
        "subject": email_data["subject"],
        "sentAt": now_iso(),
    })

    await ctx.emit({
        "topic": "email.sent",
        "data": {
            "userId": input.userId,
            "email": input.email,
            "type": "welcome",
            "sentAt": now_iso(),
        },
    })
    ctx.logger.info("Welcome email workflow completed", userId=input.userId)
