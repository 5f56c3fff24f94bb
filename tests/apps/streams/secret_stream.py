from raypipe import StreamConfig


def only_with_the_password(subscription: dict, auth: str | None) -> bool:
    return auth == "letmein"


config = StreamConfig(name="secret", can_access=only_with_the_password)
