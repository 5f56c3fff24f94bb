"""An enqueue, checked the way every caller must (declared topic, every subscriber's input
schema) and handed to the runtime's bus."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from raypipe.effects import Effect
from raypipe.errors import EnqueueError, EnqueueValidationError, SchemaValidationError
from raypipe.jsonvalues import plain_json
from raypipe.messages import Message, new_id
from raypipe.runtime_protocols import Runtime

if TYPE_CHECKING:
    from raypipe.app import App
    from raypipe.steps import Step

__all__ = ["build_message", "publish"]

log = logging.getLogger("raypipe.steps")


def build_message(
    app: App, topic: str, data: Any, *, trace_id: str, source: Step | None,
    group_id: str | None = None, message_id: str | None = None, parent: str | None = None,
) -> Message:
    """Check an enqueue the way every caller must: declared topic, subscribers' schemas."""
    if source is not None and topic not in source.config.enqueues:
        problem = (f"step {source.name!r} enqueued {topic!r}, which is not in its enqueues "
                   f"{list(source.config.enqueues)}")
        if not source.lenient:
            raise EnqueueError(problem)
        log.warning("%s; delivered anyway, as Motia does (strict = true makes it an error)",
                    problem)
    payload = plain_json(data, f"the message on {topic!r}")
    for sub in app.subscribers(topic):
        schema = sub.queue_trigger(topic).input
        if schema is not None:
            try:
                schema.validate(payload, what=f"message on {topic!r}")
            except SchemaValidationError as exc:
                raise EnqueueValidationError(topic, sub.name, exc.errors) from None
    return Message(topic=topic, data=payload, trace_id=trace_id, group_id=group_id,
                   source=source.name if source else None, id=message_id or new_id(),
                   parent=parent)


async def publish(
    app: App, runtime: Runtime, topic: str, data: Any, *, trace_id: str,
    source: Step | None = None, group_id: str | None = None, effect: Effect | None = None,
) -> str:
    """Validate and hand one message to the bus; returns its id. A message that is a
    delivery's ``effect`` is named after it, so a repeat of that enqueue is recognised."""
    msg = build_message(app, topic, data, trace_id=trace_id, source=source, group_id=group_id,
                        message_id=effect.id if effect else None,
                        parent=effect.owner if effect else None)
    await runtime.bus.publish([msg])
    return msg.id
