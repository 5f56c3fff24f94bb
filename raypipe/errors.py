"""Every error raypipe raises on purpose derives from :class:`RaypipeError`.

The tree::

    RaypipeError
    ├── ConfigError              bad settings (pyproject, RAYPIPE_* variables, flags)
    ├── AppLoadError             an app failed to load; ``.errors`` lists every StepLoadError
    │   └── StepLoadError        one step or stream file is wrong; names the file and the field
    ├── ConfigFieldError         a step config's field is wrong; ``.field`` (``triggers[0].path``)
    ├── SchemaValidationError    a value failed its schema; ``.errors`` has the field errors
    │   └── EnqueueValidationError   a message failed a subscriber's ``input`` schema
    ├── EnqueueError             a step enqueued a topic it did not declare
    ├── UpdateOpError            a state ``update`` op cannot apply (also a ValueError)
    ├── NotJSONError             a value to store or send is not plain JSON (also a TypeError)
    ├── LimitError               a value past a limit (a streamed chunk) (also a ValueError)
    │   └── JSONLimitError       a body nested too deep or not text (a lone surrogate)
    ├── UsageError               raypipe used where it cannot be: ctx outside its handler's
    │                            run, no handler for the trigger, a closed response (also a
    │                            RuntimeError)
    ├── InvalidIdError           a state or stream id that cannot be stored (also a ValueError)
    ├── StateLayoutError         keys in Redis that an older raypipe wrote ambiguously; ``.key``
    ├── DeployError              a deploy refused before it touched the running app; ``.cause``
    ├── UnsafePathError          a folder raypipe would use is another user's or open; ``.path``
    ├── BackendUnavailableError  the state backend or dispatcher did not answer in time; ``.part``
    ├── RefGoneError             no value is held for a reference any more; ``.ref_id``
    └── RuntimeNotRunningError   no raypipe runtime answers for this app
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AppLoadError",
    "BackendUnavailableError",
    "ConfigError",
    "ConfigFieldError",
    "DeployError",
    "EnqueueError",
    "EnqueueValidationError",
    "InvalidIdError",
    "JSONLimitError",
    "LimitError",
    "NotJSONError",
    "RaypipeError",
    "RefGoneError",
    "RuntimeNotRunningError",
    "SchemaValidationError",
    "StateLayoutError",
    "StepLoadError",
    "UnsafePathError",
    "UpdateOpError",
    "UsageError",
]


class RaypipeError(Exception):
    """The root of raypipe's errors."""


class ConfigError(RaypipeError):
    """Settings that cannot be used."""


class ConfigFieldError(RaypipeError):
    """A step config problem at ``field`` (a path such as ``triggers[0].expression``), as
    :func:`raypipe.step_configs.check_config` raises it; the loader adds the file."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class StepLoadError(RaypipeError):
    """One step (or stream) file is wrong. ``file`` and ``field`` say where."""

    def __init__(self, file: str, field: str | None, message: str) -> None:
        self.file = file
        self.field = field
        self.message = message
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {message}")


class AppLoadError(RaypipeError):
    """An app did not load; every problem found is in ``errors``, not just the first."""

    def __init__(self, errors: Sequence[StepLoadError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"the app has {len(self.errors)} error(s):\n{lines}")


class SchemaValidationError(RaypipeError):
    """A value failed its schema. ``errors`` is pydantic-style: ``[{"loc", "msg", "type"}]``."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '<root>'}: {e.get('msg')}"
            for e in errors
        )
        super().__init__(f"{message}: {details}" if details else message)


class EnqueueValidationError(SchemaValidationError):
    """A message failed the ``input`` schema of a step subscribed to its topic."""

    def __init__(self, topic: str, step: str, errors: list[dict[str, Any]]) -> None:
        self.topic = topic
        self.step = step
        super().__init__(f"message on topic {topic!r} fails the input of step {step!r}", errors)


class EnqueueError(RaypipeError):
    """An enqueue that cannot be accepted (for example an undeclared topic)."""


class UpdateOpError(RaypipeError, ValueError):
    """A state ``update`` op cannot apply. ``index`` and ``op`` say which one."""

    def __init__(self, message: str, *, index: int = -1, op: Any = None) -> None:
        self.index = index
        self.op = op
        super().__init__(message)


class NotJSONError(RaypipeError, TypeError):
    """A value to store or send is not plain JSON (an object, NaN, Infinity, a lone surrogate,
    a non-string key). ``path`` says where in the value."""

    def __init__(self, what: str, path: str, problem: str) -> None:
        self.what = what
        self.path = path
        self.problem = problem
        super().__init__(f"{what} is not plain JSON: at {path or 'the top'}, {problem}")


class RuntimeNotRunningError(RaypipeError):
    """No raypipe runtime answers: start one with ``raypipe dev`` or ``raypipe start``."""


class RefGoneError(RaypipeError, LookupError):
    """``ctx.get(ref)`` found no value for the reference: freed after nothing named it, lost
    with its holder (without a blob store), or never put in this app. ``ref_id`` names it."""

    def __init__(self, ref_id: str, problem: str) -> None:
        self.ref_id = ref_id
        super().__init__(f"reference {ref_id}: {problem}")


class DeployError(RaypipeError):
    """A deploy refused before it touched anything running: the running app (if any) keeps
    serving. ``cause`` names the check that failed (``"schedulable"``, ``"route_prefix"``,
    ``"state"``, ``"state_change"``)."""

    def __init__(self, cause: str, message: str) -> None:
        self.cause = cause
        super().__init__(message)


class InvalidIdError(RaypipeError, ValueError):
    """A group, item or stream id that cannot be stored: not a string, longer than
    :data:`MAX_ID_LENGTH`, or not text (a lone surrogate). ``what`` names the id; the message
    shows it escaped."""

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


#: The longest group, item or stream id, in characters.
MAX_ID_LENGTH = 1024


class StateLayoutError(RaypipeError):
    """Redis holds a key an older raypipe wrote in a layout that cannot be read without
    guessing; ``key`` names it (shown escaped)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        shown = key.encode("unicode_escape").decode("ascii")
        super().__init__(f"state key {shown!r} cannot be moved to the current layout: {problem}")


class UnsafePathError(RaypipeError):
    """A folder raypipe would unpack code into or create files in is not this user's alone;
    nothing in it is used. ``path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path} {problem}: refusing to use it (remove it, or set TMPDIR to a "
                         "folder of your own)")


class BackendUnavailableError(RaypipeError):
    """A part the request needs (``part``: ``"state"``, ``"streams"`` or ``"dispatcher"``) did
    not answer within ``backend_timeout_seconds``; HTTP answers 503."""

    def __init__(self, part: str, timeout: float) -> None:
        self.part = part
        self.timeout = timeout
        super().__init__(f"the {part} did not answer within {timeout:g}s")


class LimitError(RaypipeError, ValueError):
    """A value past one of raypipe's limits (a streamed response's chunk, say)."""


class JSONLimitError(LimitError):
    """A body that is JSON, but past a limit (depth) or not text (a lone surrogate)."""


class UsageError(RaypipeError, RuntimeError):
    """raypipe used where it cannot be: ``ctx`` outside its handler's run, ``ctx.match()`` or
    a Motia multi-trigger step with no handler for the trigger that fired, a write to a
    streamed response that was closed."""
