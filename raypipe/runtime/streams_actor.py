"""The streams actor: a Ray shell over :class:`~raypipe.streams.service.StreamsService`
(stream items, their relays and stream triggers). An app of ``shards = K`` runs K, each
holding the stream groups :func:`raypipe.shards.stream_shard` gives it."""

from __future__ import annotations

import ray

from raypipe import constants
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.runtime import gc_tuning, registry, shipping
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.triggering import ray_change_triggers
from raypipe.state.backend import make_backend
from raypipe.streams.service import StreamsService
from raypipe.trigger_kind import ChangeSource


def _triggers(spec: AppSpec, app: App) -> ChangeTriggers:
    return ray_change_triggers(spec, app, ChangeSource.STREAM)


# Relays keep a long poll open each: far more concurrent calls than Ray's default. Calls in
# flight when the actor dies are retried once it is back: writes are idempotent by effect id,
# and a relay's retried poll learns that the new actor does not know it.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1,  # type: ignore[call-overload]
            max_concurrency=10_000)
class StreamsActor(StreamsService):
    def __init__(self, spec: AppSpec, shard: int = 0) -> None:
        spec = registry.current(spec)
        app = shipping.load(spec)
        url = spec.settings.state
        store = None if url == "memory" else make_backend(
            url, spec.settings.name, constants.STREAMS_SPACE, shard, spec.settings.shards)
        super().__init__(app, store, _triggers(spec, app))
        gc_tuning.settle()

    async def ready(self) -> bool:
        await self._load()
        return True

    async def reload(self, spec: AppSpec) -> str:
        """A redeploy: the new version's streams and triggers; items and subscriptions stay."""
        app = shipping.load(spec)  # first: a version that fails to load changes nothing
        self.replace_app(app, _triggers(spec, app))
        return spec.version
