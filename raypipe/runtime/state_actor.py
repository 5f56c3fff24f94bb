"""The state actor: a Ray shell over :class:`~raypipe.state.service.StateService` (the app's
state backend, atomic writes, state triggers fired in commit order)."""

from __future__ import annotations

import time

import ray

from raypipe import constants
from raypipe.app import App
from raypipe.change_triggers import ChangeTriggers
from raypipe.engine.lease import MemoryLease
from raypipe.runtime import gc_tuning, registry, shipping
from raypipe.runtime.spec import AppSpec
from raypipe.runtime.triggering import ray_change_triggers
from raypipe.state.backend import make_backend
from raypipe.state.service import StateService
from raypipe.trigger_kind import ChangeSource


def _triggers(spec: AppSpec, app: App) -> ChangeTriggers:
    return ray_change_triggers(spec, app, ChangeSource.STATE)


# max_task_retries: a call in flight when the actor dies is retried once it is back; writes
# are idempotent by their effect id.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class StateActor(StateService):
    def __init__(self, spec: AppSpec, shard: int = 0) -> None:
        """Shard ``shard`` of the app's state actors: it holds the items
        :func:`raypipe.shards.item_shard` gives it."""
        spec = self.spec = registry.current(spec)
        self.app = shipping.load(spec)
        super().__init__(make_backend(spec.settings.state, spec.settings.name,
                                      constants.STATE_SPACE, shard, spec.settings.shards),
                         _triggers(spec, self.app))
        self._lease = MemoryLease(time.monotonic)
        gc_tuning.settle()

    async def ready(self) -> bool:
        return True

    async def cron_lease(self, owner: str, seconds: float) -> bool:
        """The cron lease of a memory-state app's dispatcher shards (asked of shard 0)."""
        return await self._lease.acquire(owner, seconds)

    async def reload(self, spec: AppSpec) -> str:
        """A redeploy: the new version's state triggers; the backend (the same, a deploy
        checked) and its items stay."""
        app = shipping.load(spec)  # first: a version that fails to load changes nothing
        self.spec, self.app = spec, app
        self.triggers = _triggers(spec, app)
        return spec.version
