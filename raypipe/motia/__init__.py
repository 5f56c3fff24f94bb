"""Motia's Python SDK (``from motia import ...``) on raypipe, for Motia apps that move here
unchanged.

raypipe answers ``import motia`` with this module while it loads an app, unless a real
``motia`` package is installed (:func:`raypipe.loader.install_motia`). The names are Motia
1.x's; each maps onto raypipe's own model: its triggers, request and context types, its state
and streams. What only Motia's iii engine had (``Motia``, ``get_instance``, ``init_iii``,
``tracing``, channels) raises an error that says so. See docs/migrating-from-motia.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raypipe.context import FlowContext
from raypipe.http.streaming import ResponseStream as MotiaHttpResponse
from raypipe.models import (
    ApiRequest,
    ApiResponse,
    StateTriggerInput,
    StreamEvent,
    StreamTriggerInput,
)
from raypipe.motia._guards import (
    get_api_triggers,
    get_cron_triggers,
    get_queue_triggers,
    get_state_triggers,
    get_stream_triggers,
    is_api_step,
    is_api_trigger,
    is_cron_step,
    is_cron_trigger,
    is_queue_step,
    is_queue_trigger,
    is_state_step,
    is_state_trigger,
    is_stream_step,
    is_stream_trigger,
)
from raypipe.motia._sdk import (
    Enqueue,
    MultiTriggerStepBuilder,
    QueryParam,
    StateManager,
    StepBuilder,
    StepConfig,
    StepDefinition,
    StreamAuthInput,
    StreamAuthResult,
    StreamConfig,
    StreamSubscription,
    TriggerInfo,
    enqueue,
    generate_step_id,
    logger,
    multi_trigger_step,
    schema_to_json_schema,
    stateManager,
    step,
)
from raypipe.steps import Step
from raypipe.streams.handle import Stream
from raypipe.triggers import (
    CronTrigger,
    QueueTrigger,
    StateTrigger,
    StreamTrigger,
    Trigger,
    cron,
    http,
    queue,
    state,
    stream,
)
from raypipe.triggers import HttpTrigger as ApiTrigger

#: Motia's SDK modules that ``from motia.<name> import ...`` finds here too.
SUBMODULES = ("types", "triggers", "streams", "state", "enqueue", "logger", "guards", "step",
              "multi_trigger", "types_stream", "loader", "schema_utils")

#: The request as ``MotiaHttpArgs`` (``args.request``, ``args.response``): raypipe's request
#: object is both.
MotiaHttpArgs = ApiRequest
MotiaHttpRequest = ApiRequest

#: Motia's type aliases.
TriggerConfig = Trigger
TriggerInput = Any
TriggerCondition = Callable[..., Any]
ApiMiddleware = Callable[..., Any]
ApiRouteMethod = str
Enqueuer = Callable[[Any], Any]

#: Motia's deprecated name for :func:`http`.
api = http

_III_ONLY = {"Motia", "get_instance", "init_iii", "setup_step_endpoint", "tracing",
              "ChannelReader", "ChannelWriter"}


def __getattr__(name: str) -> Any:
    if name in _III_ONLY:
        raise AttributeError(
            f"motia.{name} belongs to Motia's iii engine runtime; raypipe runs the app itself "
            "and has no equivalent (see docs/migrating-from-motia.md)")
    raise AttributeError(f"module 'motia' (raypipe's Motia SDK) has no attribute {name!r}")


__all__ = [
    "ApiMiddleware", "ApiRequest", "ApiResponse", "ApiRouteMethod", "ApiTrigger",
    "CronTrigger", "Enqueue", "Enqueuer", "FlowContext", "MotiaHttpArgs", "MotiaHttpRequest",
    "MotiaHttpResponse", "MultiTriggerStepBuilder", "QueryParam", "QueueTrigger",
    "StateManager", "StateTrigger", "StateTriggerInput", "Step", "StepBuilder", "StepConfig",
    "StepDefinition", "Stream", "StreamAuthInput", "StreamAuthResult", "StreamConfig",
    "StreamEvent", "StreamSubscription", "StreamTrigger", "StreamTriggerInput",
    "TriggerCondition", "TriggerConfig", "TriggerInfo", "TriggerInput", "api", "cron",
    "enqueue", "generate_step_id", "get_api_triggers", "get_cron_triggers",
    "get_queue_triggers", "get_state_triggers", "get_stream_triggers", "http",
    "is_api_step", "is_api_trigger", "is_cron_step", "is_cron_trigger", "is_queue_step",
    "is_queue_trigger", "is_state_step", "is_state_trigger", "is_stream_step",
    "is_stream_trigger", "logger", "multi_trigger_step", "queue", "schema_to_json_schema",
    "state", "stateManager", "step", "stream",
]
