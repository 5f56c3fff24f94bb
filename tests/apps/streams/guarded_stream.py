"""A Motia-style dict config with its own access check (``canAccess``)."""


def signed_in(subscription: dict, auth: str | None) -> bool:
    return auth is not None


config = {"name": "guarded", "schema": {"type": "object"}, "canAccess": signed_in}
