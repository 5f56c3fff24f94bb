"""Change triggers in the state and streams actors: their deliveries go to the dispatcher
actor (:class:`~raypipe.change_triggers.ChangeTriggers` is the Ray-free logic)."""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from raypipe import constants, trigger_kind
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.context import FlowContext
from raypipe.engine.delivery import Delivery
from raypipe.runtime.spec import AppSpec
from raypipe.runtime_protocols import Origin
from raypipe.shards import delivery_shard
from raypipe.steps import Step

__all__ = ["INVOKE_TIMEOUT", "ray_change_triggers"]

#: Seconds to wait for the dispatcher to accept a trigger's delivery.
INVOKE_TIMEOUT = 30.0


class _DispatcherInvoke:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self._dispatchers: dict[int, Any] = {}

    async def __call__(self, delivery: Delivery) -> None:
        shard = delivery_shard(delivery, self.spec.settings.shards)
        dispatcher = self._dispatchers.get(shard)
        if dispatcher is None:
            dispatcher = self._dispatchers[shard] = ray.get_actor(
                constants.shard_actor(constants.DISPATCHER_ACTOR, shard),
                namespace=self.spec.namespace)
        try:
            # Bounded: a call lost with a dying dispatcher must fail (the writer then retries),
            # not hold every later change of this actor.
            await asyncio.wait_for(dispatcher.invoke.remote([delivery]), INVOKE_TIMEOUT)
        except Exception:
            self._dispatchers.pop(shard, None)  # look the actor up again next time
            raise


def ray_change_triggers(spec: AppSpec, app: App, source: trigger_kind.ChangeSource
                        ) -> ChangeTriggers:
    def context(step: Step, origin: Origin) -> FlowContext:
        from raypipe.runtime.bridge import runtime_for

        return FlowContext(app, runtime_for(spec), step=step, trace_id=origin.trace_id)

    return ChangeTriggers(app, source, invoke=_DispatcherInvoke(spec),
                          context=context)
