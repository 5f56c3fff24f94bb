"""raypipe: Motia's step model (HTTP, queue, cron, state and stream triggers; atomic state;
flows) in Python, running on Ray."""

# The subpackages `http` and `state` share their names with the trigger constructors exported
# below. Importing them first means the import system has already bound them, so a later
# `import raypipe.http.ingress` cannot rebind `raypipe.http` over the function users import.
from collections.abc import AsyncIterator
from typing import Any

import raypipe.http
import raypipe.state
import raypipe.streams  # noqa: F401
from raypipe.context import FlowContext
from raypipe.errors import (
    AppLoadError,
    BackendUnavailableError,
    ConfigError,
    ConfigFieldError,
    DeployError,
    EnqueueError,
    EnqueueValidationError,
    InvalidIdError,
    JSONLimitError,
    LimitError,
    NotJSONError,
    RaypipeError,
    RefGoneError,
    RuntimeNotRunningError,
    SchemaValidationError,
    StateLayoutError,
    StepLoadError,
    UnsafePathError,
    UpdateOpError,
    UsageError,
)
from raypipe.models import (
    ApiRequest,
    ApiResponse,
    Form,
    StateTriggerInput,
    StreamEvent,
    StreamTriggerInput,
    UploadedFile,
)
from raypipe.ray_options import Batch, RayOptions
from raypipe.refs import Ref
from raypipe.steps import StepConfig
from raypipe.streams.config import StreamConfig
from raypipe.streams.handle import Stream
from raypipe.trigger_kind import TriggerKind
from raypipe.triggers import QueueConfig, cron, http, queue, state, stream

#: The one version string: pyproject.toml reads it from here.
__version__ = "0.1.0"


def subscribe(name: str, group_id: str, id: str | None = None, *, app: Any = ".",
              buffer: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """``async for message in raypipe.subscribe("workflows", "active-workflows")``: the
    stream's ``sync`` message, then every change, as WebSocket clients get them. ``app`` is
    the app directory (its settings name the app to follow)."""
    # Imported here: following a stream needs Ray, importing raypipe must not.
    from raypipe.runtime.subscribe import subscribe as _subscribe

    return _subscribe(name, group_id, id, app=app, buffer=buffer)

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "AppLoadError",
    "BackendUnavailableError",
    "Batch",
    "ConfigError",
    "ConfigFieldError",
    "DeployError",
    "EnqueueError",
    "EnqueueValidationError",
    "FlowContext",
    "Form",
    "InvalidIdError",
    "JSONLimitError",
    "LimitError",
    "NotJSONError",
    "QueueConfig",
    "RayOptions",
    "RaypipeError",
    "Ref",
    "RefGoneError",
    "RuntimeNotRunningError",
    "SchemaValidationError",
    "StateLayoutError",
    "StateTriggerInput",
    "StepConfig",
    "StepLoadError",
    "Stream",
    "StreamConfig",
    "StreamEvent",
    "StreamTriggerInput",
    "TriggerKind",
    "UnsafePathError",
    "UpdateOpError",
    "UploadedFile",
    "UsageError",
    "__version__",
    "cron",
    "http",
    "queue",
    "state",
    "stream",
    "subscribe",
]
