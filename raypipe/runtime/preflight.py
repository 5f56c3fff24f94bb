"""What a deploy checks before it touches anything running. Each failed check is a
:class:`~raypipe.errors.DeployError` naming its cause; the running app, if any, keeps serving.

- the app loads (every step file, the ``authenticate`` setting);
- every step's Ray resources fit at least one node of the cluster;
- its route prefix is free on Serve, or already this app's;
- its state backend answers;
- a running app keeps its state backend unless the deploy says to change it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import ray

from raypipe import constants
from raypipe.app import App
from raypipe.errors import DeployError
from raypipe.loader import load_app
from raypipe.ray_options import demand
from raypipe.runtime.spec import AppSpec
from raypipe.settings import redact_url

__all__ = ["check", "load", "route_prefix_free", "same_state", "schedulable",
           "state_reachable"]

log = logging.getLogger("raypipe.deploy")

#: Seconds the state backend has to answer a deploy's ping.
STATE_TIMEOUT = 5.0


def check(spec: AppSpec, *, change_state: bool = False, serve: bool = True) -> App:
    """Every check, in order; returns the loaded app. ``serve=False`` leaves out the one
    that asks Serve (:func:`route_prefix_free`), for a caller still starting it."""
    app = load(spec)
    schedulable(app, spec)
    if serve:
        route_prefix_free(spec)
    state_reachable(spec)
    if not change_state:
        same_state(spec)
    return app


def load(spec: AppSpec) -> App:
    """The app, loaded as its workers will load it (an AppLoadError names every problem)."""
    return load_app(spec.root, spec.settings, spec.version)


def schedulable(app: App, spec: AppSpec) -> None:
    nodes: list[dict[str, float]] = [
        n.get("Resources", {}) for n in ray.nodes()  # type: ignore[no-untyped-call]
        if n.get("Alive")]
    for step in app.steps.values():
        need = demand(step.config.ray, spec.settings.task_num_cpus)
        if not any(all(res.get(k, 0.0) >= v for k, v in need.items()) for res in nodes):
            largest: dict[str, float] = max(
                nodes, key=lambda r: sum(r.get(k, 0.0) >= v for k, v in need.items()),
                default={})
            missing = {k: v for k, v in need.items() if largest.get(k, 0.0) < v}
            raise DeployError(
                "schedulable",
                f"step {step.name!r} asks for {need}, and no node of the cluster has it "
                f"(short of {missing} even on the closest node); its tasks would wait forever."
                " Start a node with those resources (ray start --num-gpus/--resources) or "
                "change the step's `ray` options")


def _serve_apps() -> dict[str, Any]:
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        return {}
    details = client.get_serve_details()
    apps: dict[str, Any] = details.get("applications", {}) if isinstance(details, dict) else {}
    return apps


def route_prefix_free(spec: AppSpec) -> None:
    own = constants.serve_app_name(spec.settings.name)
    prefix = spec.settings.route_prefix.rstrip("/") or "/"
    try:
        apps = _serve_apps()
    except Exception:  # Serve not started yet: nothing can hold the prefix
        log.debug("no Serve details", exc_info=True)
        return
    for name, details in apps.items():
        theirs = ((details or {}).get("route_prefix") or "").rstrip("/") or "/"
        if name != own and theirs == prefix and (details or {}).get("route_prefix"):
            raise DeployError(
                "route_prefix",
                f"route prefix {prefix!r} is taken by Serve app {name!r}; two apps on one "
                "prefix would capture each other's traffic. Give this app its own "
                "`route_prefix` (or remove the other app)")


def state_reachable(spec: AppSpec) -> None:
    url = spec.settings.state
    if url == "memory":
        return
    import redis

    from raypipe.state.backends.redis import is_cluster

    cluster = is_cluster(url)
    # A cluster's node answers a plain client's PING and INFO as any Redis does.
    client = redis.Redis.from_url(url.replace("+cluster", "", 1) if cluster else url,
                                  socket_connect_timeout=STATE_TIMEOUT,
                                  socket_timeout=STATE_TIMEOUT)
    try:
        client.ping()
        enabled = bool(client.info("cluster").get("cluster_enabled"))
    except Exception as exc:
        raise DeployError("state", f"the state backend {redact_url(url)} does not answer "
                          f"({type(exc).__name__}: {exc}); nothing was deployed") from None
    else:
        if enabled != cluster:
            fix = ("it is a node of a Redis Cluster: name it redis+cluster://" if enabled else
                   "it is not a node of a Redis Cluster: name it redis://")
            raise DeployError("state", f"the state backend {redact_url(url)} is not what its "
                              f"URL says ({fix}...); nothing was deployed")
    finally:
        with contextlib.suppress(Exception):
            client.close()


def same_state(spec: AppSpec) -> None:
    """A running app keeps its state where it is: moving it is a decision, not a default."""
    try:
        running = ray.get_actor(constants.DISPATCHER_ACTOR, namespace=spec.namespace)
    except ValueError:
        return  # not running
    try:
        theirs = ray.get(running.state_url.remote(), timeout=30)
    except Exception:
        log.warning("could not ask the running app for its state backend", exc_info=True)
        return
    try:
        shards = ray.get(running.shard_count.remote(), timeout=30)
    except Exception:
        log.warning("could not ask the running app for its shards", exc_info=True)
        shards = spec.settings.shards
    if shards != spec.settings.shards:
        raise DeployError(
            "state_change",
            f"the running app has {shards} shard(s); this deploy would have "
            f"{spec.settings.shards}, and its deliveries and items would not follow. Keep "
            "`shards` as it is, or pass --change-state to restart the app's actors with the new "
            "number (with memory state, its state and deliveries in flight are lost)")
    if theirs != spec.settings.state:
        raise DeployError(
            "state_change",
            f"the running app keeps its state in {redact_url(theirs)}; this deploy would use "
            f"{redact_url(spec.settings.state)}, and the running app's state would not follow. "
            "Pass --state with the running backend, or --change-state to move to the new one")

