"""What starts a step: the built-in trigger kinds' types and constructors, in one place.

Each kind is declared in its own module of :mod:`raypipe.trigger_kinds`; what they share
(the :class:`~raypipe.trigger_kind.TriggerKind` enum, conditions, the registry) is
:mod:`raypipe.trigger_kind`."""

from __future__ import annotations

from raypipe.trigger_kind import Condition, Trigger, TriggerKind, check_condition, wants_ctx
from raypipe.trigger_kinds.cron import CronTrigger, cron
from raypipe.trigger_kinds.http import HTTP_METHODS, HttpTrigger, http, normalize_path
from raypipe.trigger_kinds.queue import QueueConfig, QueueTrigger, queue
from raypipe.trigger_kinds.state import StateTrigger, state
from raypipe.trigger_kinds.stream import StreamTrigger, stream

__all__ = [
    "HTTP_METHODS",
    "Condition",
    "CronTrigger",
    "HttpTrigger",
    "QueueConfig",
    "QueueTrigger",
    "StateTrigger",
    "StreamTrigger",
    "Trigger",
    "TriggerKind",
    "check_condition",
    "cron",
    "http",
    "normalize_path",
    "queue",
    "state",
    "stream",
    "wants_ctx",
]
