"""Step configs: the :class:`StepConfig` users write, the Motia dict shapes it is read from, and
the loaded :class:`Step` the runtime works with."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from raypipe import triggers as t
from raypipe.ray_options import RayOptions, ray_options_from
from raypipe.schedules import check_cron
from raypipe.schemas import Schema

__all__ = ["ConfigFieldError", "Step", "StepConfig", "check_config", "config_from_dict"]


class ConfigFieldError(Exception):
    """A config problem at ``field`` (a path such as ``triggers[0].expression``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class StepConfig:
    name: str
    triggers: Sequence[t.Trigger] = ()
    #: Topics the handler may enqueue.
    enqueues: Sequence[str] = ()
    flows: Sequence[str] = ()
    description: str = ""
    #: Drawn in the flow diagram only; never delivered.
    virtual_enqueues: Sequence[str] = ()
    virtual_subscribes: Sequence[str] = ()
    #: What the step's Ray tasks ask of the cluster (GPUs, memory, custom resources, ...).
    ray: RayOptions = field(default_factory=RayOptions)

    @property
    def is_noop(self) -> bool:
        return not self.triggers


@dataclass
class Step:
    """A loaded step: its config (schemas compiled) and handler, and where it came from."""

    config: StepConfig
    handler: Callable[..., Any] | None
    #: Path relative to the app directory, as users see it in errors.
    file: str
    module: str
    #: Motia's leniency: a response off its schema and an undeclared enqueue log a warning
    #: instead of failing (Motia-shaped configs unless the ``strict`` setting is on).
    lenient: bool = False
    subscribes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.subscribes = tuple(
            tr.topic for tr in self.config.triggers if isinstance(tr, t.QueueTrigger)
        )

    @property
    def name(self) -> str:
        return self.config.name

    def triggers_of(self, kind: type[t.Trigger]) -> list[Any]:
        return [tr for tr in self.config.triggers if isinstance(tr, kind)]

    def queue_trigger(self, topic: str) -> t.QueueTrigger:
        for tr in self.triggers_of(t.QueueTrigger):
            if tr.topic == topic or tr.topic == "*":
                return tr  # type: ignore[no-any-return]
        raise KeyError(f"step {self.name!r} has no queue trigger on {topic!r}")


# --- reading Motia's dict shapes -------------------------------------------------------------

_IGNORED_KEYS = frozenset({"includeFiles", "include_files", "$schema"})
_TOP_KEYS_1X = {"name", "description", "triggers", "enqueues", "flows", "ray", "virtualEnqueues",
                "virtual_enqueues", "virtualSubscribes", "virtual_subscribes"}
_TOP_KEYS_0X = {"type", "name", "description", "flows", "ray", "emits", "virtualEmits",
                "virtual_emits",
                "virtualSubscribes", "virtual_subscribes", "subscribes", "input", "method",
                "path", "bodySchema", "body_schema", "responseSchema", "response_schema",
                "queryParams", "query_params", "middleware", "cron", "infrastructure",
                "condition", "enqueues", "virtualEnqueues", "virtual_enqueues"}


def _get(d: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return default


def _topics(value: Any, where: str) -> tuple[str, ...]:
    """``["a", {"topic": "b", "label": ...}]`` -> ``("a", "b")``."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigFieldError(where, "must be a list of topics")
    out = []
    for i, item in enumerate(value):
        topic = item.get("topic") if isinstance(item, Mapping) else item
        if not isinstance(topic, str) or not topic:
            raise ConfigFieldError(f"{where}[{i}]", "must be a topic name or {'topic': ...}")
        out.append(topic)
    return tuple(out)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigFieldError(where, "must be a list of strings")
    return tuple(value)


_QUEUE_KEYS = {
    "type": "type", "maxRetries": "max_retries", "max_retries": "max_retries",
    "backoff": "backoff", "backoffType": "backoff", "backoff_type": "backoff",
    "backoffDelayMs": "backoff_delay_ms", "backoff_delay_ms": "backoff_delay_ms",
    "maxBackoffMs": "max_backoff_ms", "max_backoff_ms": "max_backoff_ms",
    "delaySeconds": "delay_seconds", "delay_seconds": "delay_seconds",
    "visibilityTimeout": "visibility_timeout", "visibility_timeout": "visibility_timeout",
    "concurrency": "concurrency", "maxConcurrency": "concurrency",
}


def _queue_config(value: Any, where: str) -> t.QueueConfig:
    if value is None:
        return t.QueueConfig()
    if isinstance(value, t.QueueConfig):
        return value
    if not isinstance(value, Mapping):
        raise ConfigFieldError(where, "must be a QueueConfig or a dict")
    kwargs = {}
    for k, v in value.items():
        if k not in _QUEUE_KEYS:
            raise ConfigFieldError(f"{where}.{k}",
                                   f"unknown queue setting; known: {sorted(_QUEUE_KEYS)}")
        kwargs[_QUEUE_KEYS[k]] = v
    return t.QueueConfig(**kwargs)


def _trigger_from_dict(d: Any, where: str) -> t.Trigger:
    if isinstance(d, (t.HttpTrigger, t.QueueTrigger, t.CronTrigger, t.StateTrigger,
                      t.StreamTrigger)):
        return d
    if not isinstance(d, Mapping):
        raise ConfigFieldError(where, "must be a trigger (http(), queue(), ...) or a dict")
    kind = d.get("type")
    cond = d.get("condition")
    if kind in ("http", "api"):
        return t.http(
            _get(d, "method", default="GET"), _get(d, "path", default=""),
            _get(d, "bodySchema", "body_schema"), _get(d, "responseSchema", "response_schema"),
            _get(d, "queryParams", "query_params"), _get(d, "middleware"), cond,
        )
    if kind in ("queue", "event"):
        cfg = _get(d, "config", "infrastructure", default=None)
        if isinstance(cfg, Mapping) and "queue" in cfg:
            cfg = cfg["queue"]
        return t.QueueTrigger(
            _get(d, "topic", default=""), d.get("input"),
            _queue_config(cfg, f"{where}.config"), cond,
        )
    if kind == "cron":
        return t.CronTrigger(_get(d, "expression", "cron", default=""), cond)
    if kind == "state":
        return t.StateTrigger(cond, _get(d, "groupId", "group_id"))
    if kind == "stream":
        return t.StreamTrigger(
            _get(d, "streamName", "stream_name", default=""), _get(d, "groupId", "group_id"),
            _get(d, "itemId", "item_id"), cond,
        )
    raise ConfigFieldError(
        f"{where}.type", f"unknown trigger type {kind!r}; use http, queue, cron, state or stream"
    )


def _check_keys(d: Mapping[str, Any], known: set[str]) -> None:
    for k in d:
        if k not in known and k not in _IGNORED_KEYS:
            raise ConfigFieldError(str(k), "unknown config key")


def config_from_dict(d: Mapping[str, Any]) -> StepConfig:
    """Read a Motia config dict, 1.x (``triggers``/``enqueues``) or 0.x (``type``/``emits``)."""
    if "triggers" in d or "type" not in d:
        _check_keys(d, _TOP_KEYS_1X)
        raw = d.get("triggers") or []
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise ConfigFieldError("triggers", "must be a list")
        trig = tuple(_trigger_from_dict(x, f"triggers[{i}]") for i, x in enumerate(raw))
        return StepConfig(
            name=d.get("name", ""),
            triggers=trig,
            enqueues=_topics(d.get("enqueues"), "enqueues"),
            flows=_strings(d.get("flows"), "flows"),
            description=d.get("description") or "",
            virtual_enqueues=_topics(_get(d, "virtualEnqueues", "virtual_enqueues"),
                                     "virtualEnqueues"),
            virtual_subscribes=_topics(_get(d, "virtualSubscribes", "virtual_subscribes"),
                                       "virtualSubscribes"),
            ray=d.get("ray") or RayOptions(),
        )
    _check_keys(d, _TOP_KEYS_0X)
    kind = d["type"]
    cond = d.get("condition")
    trig_list: list[t.Trigger]
    if kind == "api":
        trig_list = [_trigger_from_dict({**d, "type": "http"}, "")]
    elif kind == "event":
        infra = d.get("infrastructure") or {}
        qcfg = _queue_config(infra.get("queue") if isinstance(infra, Mapping) else None,
                             "infrastructure.queue")
        trig_list = [t.QueueTrigger(topic, d.get("input"), qcfg, cond)
                     for topic in _topics(d.get("subscribes"), "subscribes")]
        if not trig_list:
            raise ConfigFieldError("subscribes", "an event step must subscribe to a topic")
    elif kind == "cron":
        trig_list = [t.CronTrigger(d.get("cron") or "", cond)]
    elif kind == "noop":
        trig_list = []
    else:
        raise ConfigFieldError("type", f"unknown step type {kind!r}; use api, event, cron or noop")
    return StepConfig(
        name=d.get("name", ""),
        triggers=tuple(trig_list),
        enqueues=_topics(_get(d, "emits", "enqueues"), "emits"),
        flows=_strings(d.get("flows"), "flows"),
        description=d.get("description") or "",
        virtual_enqueues=_topics(
            _get(d, "virtualEmits", "virtual_emits", "virtualEnqueues", "virtual_enqueues"),
            "virtualEmits"),
        virtual_subscribes=_topics(_get(d, "virtualSubscribes", "virtual_subscribes"),
                                   "virtualSubscribes"),
        ray=d.get("ray") or RayOptions(),
    )


# --- checking a config and compiling its schemas ---------------------------------------------

def _schema(spec: Any, where: str) -> Schema | None:
    if spec is None or isinstance(spec, Schema):
        return spec
    try:
        return Schema(spec)
    except Exception as exc:
        raise ConfigFieldError(where, f"not a usable schema ({exc})") from exc


def _response_schemas(spec: Any, where: str) -> Any:
    """``{status: schema}`` stays a mapping; a single schema applies to every status."""
    if spec is None:
        return None
    if isinstance(spec, Mapping) and spec and all(
        isinstance(k, int) or (isinstance(k, str) and k.isdigit()) for k in spec
    ):
        return {int(k): _schema(v, f"{where}[{k}]") for k, v in spec.items()}
    return _schema(spec, where)


def _check_condition(cond: Any, where: str) -> None:
    if cond is not None and not callable(cond):
        raise ConfigFieldError(f"{where}.condition", "must be a function")


def _check_trigger(tr: t.Trigger, where: str) -> t.Trigger:
    _check_condition(tr.condition, where)
    if isinstance(tr, t.QueueTrigger) and isinstance(tr.config, Mapping):
        # queue("topic", config={"maxRetries": 5}), as Motia 1.x writes it
        tr = dataclasses.replace(tr, config=_queue_config(tr.config, f"{where}.config"))
    if isinstance(tr, t.HttpTrigger):
        if tr.method not in t.HTTP_METHODS:
            raise ConfigFieldError(f"{where}.method", f"{tr.method!r} is not an HTTP method")
        if not tr.path.startswith("/"):
            raise ConfigFieldError(f"{where}.path", f"{tr.path!r} must start with '/'")
        for i, mw in enumerate(tr.middleware):
            if not callable(mw):
                raise ConfigFieldError(f"{where}.middleware[{i}]", "must be a function")
        return dataclasses.replace(
            tr,
            body_schema=_schema(tr.body_schema, f"{where}.body_schema"),
            response_schema=_response_schemas(tr.response_schema, f"{where}.response_schema"),
        )
    if isinstance(tr, t.QueueTrigger):
        if not isinstance(tr.topic, str) or not tr.topic:
            raise ConfigFieldError(f"{where}.topic", "must be a non-empty topic name")
        c = tr.config
        if c.type not in ("standard", "fifo"):
            raise ConfigFieldError(f"{where}.config.type", "must be 'standard' or 'fifo'")
        if c.backoff not in ("exponential", "fixed"):
            raise ConfigFieldError(f"{where}.config.backoff", "must be 'exponential' or 'fixed'")
        if not isinstance(c.max_retries, int) or c.max_retries < 0:
            raise ConfigFieldError(f"{where}.config.max_retries", "must be an integer >= 0")
        if c.concurrency is not None and (not isinstance(c.concurrency, int) or c.concurrency < 1):
            raise ConfigFieldError(f"{where}.config.concurrency", "must be an integer >= 1")
        for name in ("backoff_delay_ms", "max_backoff_ms", "delay_seconds",
                     "visibility_timeout"):
            v = getattr(c, name)
            if v is not None and (not isinstance(v, (int, float)) or v < 0
                                  or (name == "visibility_timeout" and v == 0)):
                raise ConfigFieldError(f"{where}.config.{name}", "must be a number > 0"
                                       if name == "visibility_timeout" else "must be >= 0")
        return dataclasses.replace(tr, input=_schema(tr.input, f"{where}.input"))
    if isinstance(tr, t.CronTrigger):
        problem = check_cron(tr.expression)
        if problem:
            raise ConfigFieldError(f"{where}.expression", problem)
        return tr
    if isinstance(tr, t.StreamTrigger):
        if not isinstance(tr.stream_name, str) or not tr.stream_name:
            raise ConfigFieldError(f"{where}.stream_name", "must be a stream name")
        return tr
    return tr


# Where a 0.x dict keeps what 1.x keeps on its (single) trigger, for error messages.
_0X_FIELDS = {"expression": "cron", "config": "infrastructure.queue", "topic": "subscribes"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _as_written(raw: Mapping[str, Any], field: str) -> str:
    """``triggers[0].body_schema`` -> ``triggers[0].bodySchema`` where the dict is camelCase."""
    out, node = "", cast(Any, raw)
    for part in re.findall(r"\[[^\]]*\]|[^.\[\]]+", field):
        if part.startswith("["):
            key = part[1:-1]
            if isinstance(node, Sequence) and not isinstance(node, str) and key.isdigit():
                node = node[int(key)] if int(key) < len(node) else None
            else:
                node = None
            out += part
            continue
        if isinstance(node, Mapping) and part not in node and _camel(part) in node:
            part = _camel(part)
        out += f".{part}" if out else part
        node = node.get(part) if isinstance(node, Mapping) else None
    return out


def check_config(raw: Any) -> StepConfig:
    """Turn what a step file exports as ``config`` into a checked StepConfig (schemas compiled).
    Raises :class:`ConfigFieldError` naming the field as the user wrote it."""
    try:
        return _check_config(raw)
    except ConfigFieldError as exc:
        field = _as_written(raw, exc.field) if isinstance(raw, Mapping) else exc.field
        if field == exc.field:
            raise
        raise ConfigFieldError(field, exc.message) from exc


def _check_config(raw: Any) -> StepConfig:
    if isinstance(raw, Mapping) and "type" in raw and "triggers" not in raw:
        try:
            return _check_config(config_from_dict(raw))
        except ConfigFieldError as exc:
            if exc.field.startswith("triggers["):
                rest = exc.field.split("].", 1)[1] if "]." in exc.field else ""
                head, _, tail = rest.partition(".")
                field = _0X_FIELDS.get(head, head) + (f".{tail}" if tail else "")
                raise ConfigFieldError(field, exc.message) from exc
            raise
    if isinstance(raw, Mapping):
        raw = config_from_dict(raw)
    if not isinstance(raw, StepConfig):
        raise ConfigFieldError("config", "must be a StepConfig or a dict")
    if not isinstance(raw.name, str) or not raw.name.strip():
        raise ConfigFieldError("name", "every step needs a non-empty name")
    if not isinstance(raw.triggers, Sequence) or isinstance(raw.triggers, str):
        raise ConfigFieldError("triggers", "must be a list")
    checked = tuple(_check_trigger(_trigger_from_dict(tr, f"triggers[{i}]"), f"triggers[{i}]")
                    for i, tr in enumerate(raw.triggers))
    try:
        ray = ray_options_from(raw.ray)
    except ValueError as exc:
        raise ConfigFieldError("ray", str(exc)) from None
    return dataclasses.replace(
        raw,
        triggers=checked,
        ray=ray,
        enqueues=_topics(raw.enqueues, "enqueues"),
        flows=_strings(raw.flows, "flows"),
        virtual_enqueues=_topics(raw.virtual_enqueues, "virtual_enqueues"),
        virtual_subscribes=_topics(raw.virtual_subscribes, "virtual_subscribes"),
    )
