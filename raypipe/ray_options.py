"""What a step's Ray tasks ask of the cluster: ``StepConfig(..., ray=RayOptions(num_gpus=1))``,
or ``"ray": {"num_gpus": 1}`` in a dict config. Ray-free: the executor turns it into
``.options(...)`` of the step's tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Batch", "RayOptions", "demand", "ray_options_from"]


@dataclass(frozen=True)
class Batch:
    """Deliveries handed to a class handler together: ``__call__(inputs, ctxs)`` gets up to
    ``max_size`` of them, gathered for at most ``max_wait_s`` seconds while fewer are ready,
    and returns one outcome per input (an exception fails that input's attempt alone)."""

    max_size: int
    max_wait_s: float = 0.01


@dataclass(frozen=True)
class RayOptions:
    """Ray task options of one step; ``None`` keeps the app's default."""

    #: CPUs a task of this step reserves (the app's ``task_num_cpus`` if ``None``).
    num_cpus: float | None = None
    num_gpus: float | None = None
    #: Bytes of memory a task reserves (Ray's ``memory``: scheduling, not a limit).
    memory: int | None = None
    #: Only on nodes with this accelerator (``"A100"``, ``"T4"``, ...).
    accelerator_type: str | None = None
    #: Custom resources, as ``ray start --resources`` declares them: ``{"gpu_node": 1}``.
    resources: Mapping[str, float] = field(default_factory=dict)
    #: The step's own Ray ``runtime_env`` (pip packages, env_vars, ...).
    runtime_env: Mapping[str, Any] | None = None
    #: Most deliveries of this step in one task (1: a task each); if ``None``, sized by how
    #: long the step's tasks take (:class:`raypipe.engine.batching.BatchSize`).
    max_batch: int | None = None
    #: Run the step on a pool of Ray actors instead of tasks: ``n``, or ``(min, max)`` scaled
    #: by the step's backlog. Each actor asks for the options above (``num_gpus=0.5`` shares
    #: a GPU); a class handler is made once per actor (load the model in its ``__init__``).
    actors: int | tuple[int, int] | None = None
    #: A class handler's batches (:class:`Batch`, or its ``max_size``).
    batch: Batch | None = None
    #: Seconds an actor above the pool's ``min`` may stay idle before it goes (60 if
    #: ``None``).
    idle_s: float | None = None

    @property
    def pool_size(self) -> tuple[int, int] | None:
        """``(min, max)`` actors of the step's pool, ``None`` for tasks."""
        if self.actors is None:
            return None
        if isinstance(self.actors, int):
            return self.actors, self.actors
        low, high = self.actors
        return low, high

    def task_options(self, default_num_cpus: float) -> dict[str, Any]:
        """Keyword arguments for Ray's ``.options``."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus if self.num_cpus is not None
                                else default_num_cpus}
        if self.num_gpus is not None:
            opts["num_gpus"] = self.num_gpus
        if self.memory is not None:
            opts["memory"] = self.memory
        if self.accelerator_type is not None:
            opts["accelerator_type"] = self.accelerator_type
        if self.resources:
            opts["resources"] = dict(self.resources)
        if self.runtime_env is not None:
            opts["runtime_env"] = dict(self.runtime_env)
        return opts

    def public(self) -> dict[str, Any]:
        """What ``raypipe flows`` and the workbench show: the options that are set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v in (None, {}):
                continue
            if isinstance(v, Batch):
                v = {"max_size": v.max_size, "max_wait_s": v.max_wait_s}
            out[f.name] = dict(v) if isinstance(v, Mapping) else list(v) if isinstance(
                v, tuple) else v
        return out


def demand(options: RayOptions, default_num_cpus: float) -> dict[str, float]:
    """The resources one task of the step needs, in Ray's names (``CPU``, ``GPU``,
    ``memory``, ``accelerator_type:A100``, custom names)."""
    need: dict[str, float] = {"CPU": options.num_cpus if options.num_cpus is not None
                              else default_num_cpus}
    if options.num_gpus:
        need["GPU"] = options.num_gpus
    if options.memory:
        need["memory"] = float(options.memory)
    if options.accelerator_type:
        need[f"accelerator_type:{options.accelerator_type}"] = 0.001
    need.update({k: float(v) for k, v in options.resources.items()})
    return {k: v for k, v in need.items() if v}


_KEYS = {"num_cpus": "num_cpus", "numCpus": "num_cpus", "num_gpus": "num_gpus",
         "numGpus": "num_gpus", "memory": "memory", "accelerator_type": "accelerator_type",
         "acceleratorType": "accelerator_type", "resources": "resources",
         "runtime_env": "runtime_env", "runtimeEnv": "runtime_env", "max_batch": "max_batch",
         "maxBatch": "max_batch", "actors": "actors", "batch": "batch", "idle_s": "idle_s",
         "idleSeconds": "idle_s"}


def _batch(value: Any) -> Batch | None:
    if value is None or isinstance(value, Batch):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Batch(value)
    if isinstance(value, Mapping):
        size = value.get("max_size", value.get("maxSize"))
        wait = value.get("max_wait_s", value.get("maxWaitS", 0.01))
        unknown = set(value) - {"max_size", "maxSize", "max_wait_s", "maxWaitS"}
        if unknown:
            raise ValueError(f"unknown batch option {sorted(unknown)[0]!r}; known: "
                             "max_size, max_wait_s")
        return Batch(size, wait)
    raise ValueError("batch must be Batch(max_size, max_wait_s), a size, or a dict")


def _pool_shape_ok(actors: Any) -> bool:
    if isinstance(actors, bool):
        return False
    if isinstance(actors, int):
        return True
    return (isinstance(actors, tuple) and len(actors) == 2
            and all(isinstance(a, int) and not isinstance(a, bool) for a in actors))


def ray_options_from(value: Any) -> RayOptions:
    """A config's ``ray`` entry: a :class:`RayOptions` or a dict of its fields (snake or
    camelCase). Raises ``ValueError`` naming the first bad key or value."""
    if value is None:
        return RayOptions()
    if isinstance(value, RayOptions):
        opts = value
    elif isinstance(value, Mapping):
        unknown = [k for k in value if k not in _KEYS]
        if unknown:
            raise ValueError(f"unknown Ray option {unknown[0]!r}; known: "
                             f"{sorted(set(_KEYS.values()))}")
        opts = RayOptions(**{_KEYS[k]: v for k, v in value.items()})
    else:
        raise ValueError("must be RayOptions(...) or a dict")
    actors = opts.actors
    if isinstance(actors, list):
        actors = tuple(actors)
    opts = replace(opts, actors=actors, batch=_batch(opts.batch))
    size = opts.pool_size if _pool_shape_ok(opts.actors) else None
    if opts.actors is not None and (size is None or not 1 <= size[0] <= size[1]):
        raise ValueError("actors must be a count >= 1 or (min, max) with 1 <= min <= max")
    if opts.batch is not None:
        b = opts.batch
        if not isinstance(b.max_size, int) or isinstance(b.max_size, bool) or b.max_size < 1:
            raise ValueError("batch max_size must be an integer >= 1")
        if not isinstance(b.max_wait_s, (int, float)) or b.max_wait_s < 0:
            raise ValueError("batch max_wait_s must be a number of seconds >= 0")
    for name in ("num_cpus", "num_gpus", "memory", "idle_s"):
        v = getattr(opts, name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
            raise ValueError(f"{name} must be a number >= 0")
    if opts.max_batch is not None and (not isinstance(opts.max_batch, int)
                                       or opts.max_batch < 1):
        raise ValueError("max_batch must be an integer >= 1")
    if not isinstance(opts.resources, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and v >= 0
            for k, v in opts.resources.items()):
        raise ValueError("resources must map resource names to amounts >= 0")
    if opts.runtime_env is not None and not isinstance(opts.runtime_env, Mapping):
        raise ValueError("runtime_env must be a dict")
    if opts.accelerator_type is not None and not isinstance(opts.accelerator_type, str):
        raise ValueError("accelerator_type must be a string")
    return opts
