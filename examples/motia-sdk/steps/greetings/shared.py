"""What the greeting steps share (imported relatively, as a package)."""

from typing import Any

GROUP = "default"


def first(value: str | list[str] | None) -> str | None:
    """A query parameter's first value."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def greeting(name: str) -> dict[str, Any]:
    return {"name": name, "message": f"Hello, {name}!"}
