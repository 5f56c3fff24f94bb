"""GET /users/:userId/status: the user and how far their registration workflow got."""

from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext


class UserStatus(BaseModel):
    userId: str
    name: str
    email: str
    status: str
    createdAt: str
    emailSent: bool
    accountSetup: bool


class NotFound(BaseModel):
    error: str


config = {
    "type": "api",
    "name": "GetUserStatus",
    "description": "Get user registration status and details",
    "method": "GET",
    "path": "/users/:userId/status",
    "flows": ["user-registration"],
    "emits": [],
    "responseSchema": {200: UserStatus, 404: NotFound},
}


async def handler(req: ApiRequest, ctx: FlowContext) -> dict:
    user_id = req.path_params["userId"]
    ctx.logger.info("Fetching user status", userId=user_id)

    user = await ctx.state.get("users", user_id)
    if not user:
        return {"status": 404, "body": {"error": "User not found"}}

    email_record = await ctx.state.get("emails", f"welcome-{user_id}")
    user_settings = await ctx.state.get("user-settings", user_id)
    return {
        "status": 200,
        "body": {
            "userId": user["userId"],
            "name": user["name"],
            "email": user["email"],
            "status": user["status"],
            "createdAt": user["createdAt"],
            "emailSent": bool(email_record),
            "accountSetup": bool(user_settings),
        },
    }
