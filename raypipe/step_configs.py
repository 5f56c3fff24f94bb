"""Reading a step's config: Motia's dict shapes (1.x ``triggers``/``enqueues``, 0.x
``type``/``emits``) into a :class:`~raypipe.steps.StepConfig`, checked, its schemas compiled,
and every problem named by the field as the user wrote it. Each trigger kind reads and checks
its own part (:mod:`raypipe.trigger_kind`)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from raypipe import trigger_kind
from raypipe.errors import ConfigFieldError
from raypipe.ray_options import RayOptions, ray_options_from
from raypipe.steps import StepConfig
from raypipe.trigger_kind import Trigger, pick, read_topics

__all__ = ["ConfigFieldError", "check_config", "config_from_dict"]


# --- reading Motia's dict shapes -------------------------------------------------------------

_IGNORED_KEYS = frozenset({"includeFiles", "include_files", "$schema"})
_TOP_KEYS_1X = {"name", "description", "triggers", "enqueues", "flows", "ray", "virtualEnqueues",
                "virtual_enqueues", "virtualSubscribes", "virtual_subscribes"}
_TOP_KEYS_0X = {"type", "name", "description", "flows", "ray", "emits", "virtualEmits",
                "virtual_emits",
                "virtualSubscribes", "virtual_subscribes", "subscribes", "input", "method",
                "path", "bodySchema", "body_schema", "responseSchema", "response_schema",
                "queryParams", "query_params", "middleware", "cron", "infrastructure",
                "condition", "enqueues", "virtualEnqueues", "virtual_enqueues", "accepts",
                "maxBodyBytes", "max_body_bytes"}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigFieldError(where, "must be a list of strings")
    return tuple(value)


def _trigger_from_dict(d: Any, where: str) -> Trigger:
    if isinstance(d, trigger_kind.trigger_types()):
        return cast(Trigger, d)
    if not isinstance(d, Mapping):
        raise ConfigFieldError(where, "must be a trigger (http(), queue(), ...) or a dict")
    kind = d.get("type")
    spec = trigger_kind.lookup(kind) if isinstance(kind, str) else None
    if spec is None:
        known = ", ".join(k.kind.value for k in trigger_kind.kinds())
        raise ConfigFieldError(f"{where}.type", f"unknown trigger type {kind!r}; use {known}")
    return spec.from_dict(d, where)


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
            enqueues=read_topics(d.get("enqueues"), "enqueues"),
            flows=_strings(d.get("flows"), "flows"),
            description=d.get("description") or "",
            virtual_enqueues=read_topics(pick(d, "virtualEnqueues", "virtual_enqueues"),
                                     "virtualEnqueues"),
            virtual_subscribes=read_topics(pick(d, "virtualSubscribes", "virtual_subscribes"),
                                       "virtualSubscribes"),
            ray=d.get("ray") or RayOptions(),
        )
    _check_keys(d, _TOP_KEYS_0X)
    kind = d["type"]
    trig_list: list[Trigger] = []
    if kind != "noop":
        spec = next((k for k in trigger_kind.kinds() if k.legacy_type == kind), None)
        if spec is None:
            known = ", ".join(k.legacy_type for k in trigger_kind.kinds() if k.legacy_type)
            raise ConfigFieldError("type", f"unknown step type {kind!r}; use {known} or noop")
        trig_list = spec.from_legacy(d)
    return StepConfig(
        name=d.get("name", ""),
        triggers=tuple(trig_list),
        enqueues=read_topics(pick(d, "emits", "enqueues"), "emits"),
        flows=_strings(d.get("flows"), "flows"),
        description=d.get("description") or "",
        virtual_enqueues=read_topics(
            pick(d, "virtualEmits", "virtual_emits", "virtualEnqueues", "virtual_enqueues"),
            "virtualEmits"),
        virtual_subscribes=read_topics(pick(d, "virtualSubscribes", "virtual_subscribes"),
                                   "virtualSubscribes"),
        ray=d.get("ray") or RayOptions(),
    )


# --- checking a config and compiling its schemas ---------------------------------------------

def _check_trigger(tr: Trigger, where: str) -> Trigger:
    return trigger_kind.kind_of(tr).check(tr, where)


def _legacy_field(name: str) -> str:
    """Where a 0.x dict keeps what 1.x keeps on its (single) trigger, for error messages."""
    for spec in trigger_kind.kinds():
        if name in spec.legacy_fields:
            return spec.legacy_fields[name]
    return name


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
                field = _legacy_field(head) + (f".{tail}" if tail else "")
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
        enqueues=read_topics(raw.enqueues, "enqueues"),
        flows=_strings(raw.flows, "flows"),
        virtual_enqueues=read_topics(raw.virtual_enqueues, "virtual_enqueues"),
        virtual_subscribes=read_topics(raw.virtual_subscribes, "virtual_subscribes"),
    )
