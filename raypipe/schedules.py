"""Cron expressions: 5 fields, 6 with seconds first (Motia's and node-cron's reading), or 7
with seconds first and years last (Motia 1.x's)."""

from __future__ import annotations

from croniter import croniter

__all__ = ["check_cron", "missed_tick", "next_fire"]


def _fields(expression: str) -> int:
    return len(expression.split())


def check_cron(expression: str) -> str | None:
    """``None`` if ``expression`` is usable, else why not."""
    if not isinstance(expression, str) or not expression.strip():
        return "must be a non-empty cron expression"
    n = _fields(expression)
    if n not in (5, 6, 7):
        return (f"{expression!r} has {n} fields; use 5, 6 with seconds first, or 7 with "
                "seconds first and years last")
    if not croniter.is_valid(expression, second_at_beginning=(n >= 6)):
        return f"{expression!r} is not a valid cron expression"
    return None


def next_fire(expression: str, after: float) -> float:
    """The first tick strictly after ``after`` (epoch seconds, UTC)."""
    it = croniter(expression, after, second_at_beginning=(_fields(expression) >= 6))
    return float(it.get_next(float))


def missed_tick(expression: str, last: float, now: float) -> float | None:
    """The latest tick after ``last`` and at or before ``now``: the one to catch up after a
    pause (only one, however many were missed). ``None`` if none was missed."""
    if next_fire(expression, last) > now:
        return None
    it = croniter(expression, now + 1e-3, second_at_beginning=(_fields(expression) >= 6))
    return float(it.get_prev(float))
