"""On `user.registered`: create default settings and profile, mark the user active."""

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
    "name": "SetupUserAccount",
    "description": "Setup user account with default settings and preferences",
    "flows": ["user-registration"],
    "subscribes": ["user.registered"],
    "emits": ["account.setup.completed"],
    "input": RegisteredUser,
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def handler(input: RegisteredUser, ctx: FlowContext) -> None:
    user_id = input.userId
    ctx.logger.info("Setting up user account", userId=user_id)

    user_settings = {
        "userId": user_id,
        "theme": "light",
        "notifications": True,
        "language": "en",
        "timezone": "UTC",
    }
    user_profile = {
        "userId": user_id,
        "name": input.name,
        "email": input.email,
        "bio": "",
        "avatar": "https://via.placeholder.com/150",
        "joinedAt": now_iso(),
    }
    await asyncio.sleep(0.8)

    await ctx.state.set("user-settings", user_id, user_settings)
    await ctx.state.set("user-profiles", user_id, user_profile)
    ctx.logger.info("User account setup completed", userId=user_id)

    user_data = await ctx.state.get("users", user_id)
    if user_data:
        await ctx.state.set("users", user_id, {
            **user_data,
            "status": "active",
            "updatedAt": now_iso(),
        })

    await ctx.emit({
        "topic": "account.setup.completed",
        "data": {"userId": user_id, "settings": user_settings, "profile": user_profile},
    })
    ctx.logger.info("Account setup workflow completed", userId=user_id)
