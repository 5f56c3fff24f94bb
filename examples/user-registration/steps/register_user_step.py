"""POST /users/register: store the user as pending and emit `user.registered`."""

import re
import time
from datetime import datetime, timezone

from pydantic import BaseModel, field_validator

from raypipe import ApiRequest, FlowContext

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RegisterBody(BaseModel):
    """The seed's zod rules, with its messages."""

    name: str
    email: str
    password: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) < 2:
            raise ValueError("Name must be at least 2 characters")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL.match(v):
            raise ValueError("Invalid email address")
        return v

    @field_validator("password")
    @classmethod
    def _password(cls, v: str) -> str:
        if len(v) < 8:
            raise ValueError("Password must be at least 8 characters")
        return v


class RegisterResponse(BaseModel):
    userId: str
    name: str
    email: str
    status: str
    createdAt: str


config = {
    "type": "api",
    "name": "RegisterUser",
    "description": "Register a new user and trigger welcome workflow",
    "method": "POST",
    "path": "/users/register",
    "flows": ["user-registration"],
    "emits": ["user.registered"],
    "bodySchema": RegisterBody,
    "responseSchema": {201: RegisterResponse},
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    body: RegisterBody = req.body
    ctx.logger.info("Registering new user", name=body.name, email=body.email)

    user_id = f"user-{int(time.time() * 1000)}"
    user_data = {
        "userId": user_id,
        "name": body.name,
        "email": body.email,
        "status": "pending",
        "createdAt": now_iso(),
    }
    await ctx.state.set("users", user_id, user_data)

    await ctx.emit({
        "topic": "user.registered",
        "data": {"userId": user_id, "name": body.name, "email": body.email},
    })

    ctx.logger.info("User registered successfully", userId=user_id)
    return {"status": 201, "body": user_data}
