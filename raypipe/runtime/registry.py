"""The app's current spec, kept in Ray's GCS key-value store by each deploy: an actor that Ray
restarts after a crash is re-created with the arguments it was first created with, and reads
the spec deployed last from here instead."""

from __future__ import annotations

import logging

from ray import cloudpickle
from ray.experimental import internal_kv

from raypipe import constants
from raypipe.runtime.spec import AppSpec

__all__ = ["current", "record"]

log = logging.getLogger("raypipe.deploy")


def _key(spec: AppSpec) -> bytes:
    return constants.SPEC_KEY.format(namespace=spec.namespace).encode()


def record(spec: AppSpec) -> None:
    internal_kv._internal_kv_put(_key(spec), cloudpickle.dumps(spec),  # type: ignore[no-untyped-call]
                                 overwrite=True)


def current(spec: AppSpec) -> AppSpec:
    """The spec deployed last for ``spec``'s app (``spec`` itself if none is recorded)."""
    try:
        raw = internal_kv._internal_kv_get(_key(spec))
    except Exception:  # no GCS client in this process (a test of the model): keep it
        log.debug("no recorded spec", exc_info=True)
        return spec
    if not raw:
        return spec
    recorded: AppSpec = cloudpickle.loads(raw)
    return recorded


def forget(spec: AppSpec) -> None:
    internal_kv._internal_kv_del(_key(spec))
