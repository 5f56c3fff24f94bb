"""Putting an app on a Ray cluster and taking it off again."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve

from raypipe import constants
from raypipe.errors import RuntimeNotRunningError
from raypipe.http.guard import LOOPBACK_HOSTS
from raypipe.runtime import bridge, clusters, preflight, registry, shipping
from raypipe.runtime.ports import free_port
from raypipe.runtime.spec import AppSpec

__all__ = ["FAST_SERVE_ENV", "WARM_WORKERS_ENV", "Cluster", "Deployment", "connect", "deploy",
           "ingress", "prepare_local_ray", "start_actors", "teardown"]

log = logging.getLogger("raypipe.deploy")


#: Serve's throughput-optimised data path (direct gRPC between proxy and replicas) with its
#: HAProxy ingress (Linux; ray[serve] ships the binary): on 2 CPUs about 10x the default
#: proxy's requests/s, and stream events in ~10 ms instead of ~130 ms (bench/results). Set
#: where raypipe starts Ray itself; a `ray start` cluster needs them in its environment.
FAST_SERVE_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                  **({"RAY_SERVE_ENABLE_HA_PROXY": "1"} if sys.platform == "linux" else {})}

#: On that path a replica being removed stays open at least this long (Serve's default: 30 s)
#: so that load balancers can take it out of rotation; every app teardown and Ctrl-C of
#: `raypipe dev` waited for it. The HAProxy of a Ray raypipe starts is on the same machine and
#: told at once, so a short window does.
LOCAL_DRAIN_ENV = {"RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2"}

#: The raylet ends an idle worker a second after it goes idle once its node has more workers
#: than CPUs, actors counted; a fan-out after a pause then starts its task workers again (about
#: 0.6 s of CPU each). Kept for a minute instead, a 10,000-step fan-out after a 3 s pause took
#: 2.8 s instead of 4.2-5.5 s, with no worker started, and plain Ray tasks were no slower
#: (bench/results/report.md). Raising the limit itself (``RAY_num_workers_soft_limit``) is not
#: the same: the raylet prestarts workers up to it for a long queue, and made plain Ray tasks
#: 2-3x slower. Set where raypipe starts Ray itself; for a `ray start` cluster, an option.
WARM_WORKERS_ENV = {"RAY_idle_worker_killing_time_threshold_ms": "60000"}


def prepare_local_ray() -> None:
    """Set up the environment of a Ray this process is about to start (unless it already says
    otherwise): :data:`FAST_SERVE_ENV`, :data:`LOCAL_DRAIN_ENV` and :data:`WARM_WORKERS_ENV`,
    and free ports for HAProxy's stats and metrics listeners, so that several such Rays on one
    machine do not fight over the fixed defaults."""
    for key, value in {**FAST_SERVE_ENV, **LOCAL_DRAIN_ENV, **WARM_WORKERS_ENV}.items():
        os.environ.setdefault(key, value)
    if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
        for key in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
            os.environ.setdefault(key, str(free_port()))


@dataclass(frozen=True)
class Cluster:
    #: Whether this process started Ray (and so must stop it).
    started: bool
    dashboard_url: str | None


def connect(address: str | None = None, *, start: bool = False, namespace: str | None = None,
            app: str | None = None, **init_kwargs: Any) -> Cluster:
    """Join ``address``, else ``RAY_ADDRESS``, else the cluster recorded for ``app`` by its
    last deploy (:mod:`raypipe.runtime.clusters`); with none of them, start a new local Ray
    if ``start``, or fail saying how to name one. Never an arbitrary Ray of the host."""
    if ray.is_initialized():
        return Cluster(False, None)
    address = address or os.environ.get("RAY_ADDRESS") or (
        clusters.recorded(app) if app else None)
    kwargs: dict[str, Any] = {"namespace": namespace, "logging_level": logging.WARNING,
                              **{k: v for k, v in init_kwargs.items() if v is not None}}
    if address:
        info = ray.init(address=address, **kwargs)
        started = False
    elif not start:
        raise RuntimeNotRunningError(
            f"which Ray cluster serves app {app!r} is not known: set RAY_ADDRESS (the head's "
            "host:port), or deploy it from here first (`raypipe dev` or `raypipe start` "
            "records its cluster)")
    else:
        # "local": a new Ray of our own, never a cluster `ray start` registered on this host.
        prepare_local_ray()
        info = ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
                        **kwargs)
        started = True
    url = info.dashboard_url
    return Cluster(started, f"http://{url}" if url and "://" not in url else url or None)


def gcs_address() -> str:
    """The address of the cluster this process is connected to (what RAY_ADDRESS takes)."""
    return str(ray.get_runtime_context().gcs_address)


@dataclass(frozen=True)
class Deployment:
    spec: AppSpec
    url: str

    @property
    def docs_url(self) -> str:
        return self.url.rstrip("/") + "/docs"

    @property
    def workbench_url(self) -> str:
        return self.url.rstrip("/") + "/_raypipe/"


def _start_actor(cls: Any, name: str, spec: AppSpec) -> Any:
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(name, namespace=spec.namespace))
    return cls.options(name=name, namespace=spec.namespace, lifetime="detached").remote(spec)


def _actor_classes() -> list[tuple[Any, str]]:
    from raypipe.runtime.dispatcher import Dispatcher
    from raypipe.runtime.state_actor import StateActor
    from raypipe.runtime.streams_actor import StreamsActor
    from raypipe.runtime.telemetry_actor import TelemetryActor

    return [(TelemetryActor, constants.TELEMETRY_ACTOR), (StateActor, constants.STATE_ACTOR),
            (StreamsActor, constants.STREAMS_ACTOR), (Dispatcher, constants.DISPATCHER_ACTOR)]


def start_actors(spec: AppSpec, *, replace: bool = False) -> None:
    """Start the app's detached actors (telemetry, state, streams, dispatcher), or, where they
    run already, move them to ``spec``'s version in place: state, streams, dead letters and
    deliveries in flight stay. ``replace`` restarts them instead (a change of state backend).

    The caller checked the app first (:mod:`raypipe.runtime.preflight`)."""
    bridge.forget(spec)
    running: dict[str, Any] = {}
    if not replace:
        for _, name in _actor_classes():
            with contextlib.suppress(ValueError):
                running[name] = ray.get_actor(name, namespace=spec.namespace)
    if len(running) == len(_actor_classes()):
        ray.get([running[name].reload.remote(spec) for _, name in _actor_classes()])
        # Recorded once every actor runs it: until then a restarted actor runs the last one.
        registry.record(spec)
        return
    registry.record(spec)  # what the new actors read as they start
    actors = [_start_actor(cls, name, spec) for cls, name in _actor_classes()]
    ray.get([a.ready.remote() for a in actors])


def ingress(spec: AppSpec) -> Any:
    """The app's Serve application (what ``serve.run`` and Serve config files deploy)."""
    from raypipe.http.ingress import Ingress

    settings = spec.settings
    scaling: dict[str, Any] = ({"autoscaling_config": settings.autoscaling_config}
                               if settings.autoscaling_config else
                               {"num_replicas": settings.ingress_replicas})
    return Ingress.options(  # type: ignore[attr-defined]
        max_ongoing_requests=settings.ingress_max_ongoing_requests,
        ray_actor_options={"num_cpus": settings.ingress_num_cpus}, **scaling,
    ).bind(spec)


def deploy(spec: AppSpec, *, host: str | None = None, port: int | None = None,
           change_state: bool = False, ship: bool = False) -> Deployment:
    """Check the app (:mod:`raypipe.runtime.preflight`), then start its actors, or move the
    running ones to this version, and its Serve application (at its ``route_prefix``; Serve
    replaces a running app's replicas one by one). A failed check raises
    :class:`~raypipe.errors.DeployError` before anything running is touched; changing a
    running app's state backend needs ``change_state``. With ``ship`` the app's files travel
    with the deploy (:mod:`raypipe.runtime.shipping`); without, every node reads them at the
    app's path (a local Ray)."""
    host = host or spec.settings.host
    port = port or spec.settings.port
    start_serve(host, port)
    preflight.check(spec, change_state=change_state)
    if ship:
        spec = shipping.ship(spec)
    start_actors(spec, replace=change_state)
    # Serve keeps the address it was first started with; report where the app really is.
    asked = (host, port)
    host, port = _serve_address(host, port)
    if (host, port) != asked:
        log.warning("Serve on this cluster already listens on %s:%s (one HTTP address per "
                    "cluster, set by its first start); %s:%s was not used", host, port, *asked)
    if spec.settings.dev and host not in LOOPBACK_HOSTS:
        # Reachable from a network: no admin surface without a token (docs/security.md).
        spec = dataclasses.replace(spec, settings=spec.settings.model_copy(update={"dev": False}))
    prefix = spec.settings.route_prefix
    serve.run(ingress(spec), name=constants.serve_app_name(spec.settings.name),
              route_prefix=prefix)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    deployment = Deployment(spec, f"http://{shown}:{port}{'' if prefix == '/' else prefix}")
    wait_routable(deployment.url)
    return deployment


#: Times Serve's start is tried.
SERVE_START_ATTEMPTS = 3


def start_serve(host: str, port: int) -> None:
    """``serve.start``, tried again when Serve's proxy dies while it starts: on a starved
    machine the controller can miss the new proxy's health check and kill it before it ever
    runs (an ActorDiedError out of ``serve.start``)."""
    for attempt in range(1, SERVE_START_ATTEMPTS + 1):
        try:
            serve.start(http_options={"host": host, "port": port})
            return
        except ray.exceptions.RayError as exc:
            if attempt == SERVE_START_ATTEMPTS:
                raise
            log.warning("Serve did not start (%s: %s); trying again", type(exc).__name__,
                        str(exc).splitlines()[0])
            with contextlib.suppress(Exception):
                serve.shutdown()  # type: ignore[no-untyped-call]


#: Seconds a new deployment has to answer through Serve's proxy.
ROUTABLE_TIMEOUT = 120.0


def wait_routable(url: str, timeout: float = ROUTABLE_TIMEOUT) -> None:
    """Return once the app answers its health route through Serve's proxy. ``serve.run``
    returns when the replicas are up, but the proxy learns the new route a little later: a
    request in between gets a 404 (a WebSocket, a 403), and on a busy machine "a little" is
    seconds."""
    health = url.rstrip("/") + "/_raypipe/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=5) as reply:
                if reply.status == 200:
                    return
                last = f"HTTP {reply.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    # Not an error: from a client off the cluster the address may simply not be reachable.
    log.warning("the app did not answer at %s within %.0fs (%s)", health, timeout, last)


def _serve_address(host: str, port: int) -> tuple[str, int]:
    try:
        from ray.serve.context import _get_global_client

        cfg = _get_global_client().http_config  # type: ignore[union-attr]
        return str(cfg.host), int(cfg.port)
    except Exception:  # a private API: fall back to what was asked for
        return host, port


def teardown(spec: AppSpec) -> None:
    """Remove the app's Serve application and actors (and nothing else on the cluster)."""
    try:
        serve.delete(constants.serve_app_name(spec.settings.name))
    except Exception:  # Serve may already be gone with the cluster
        log.debug("serve.delete failed", exc_info=True)
    for name in (constants.DISPATCHER_ACTOR, constants.STREAMS_ACTOR, constants.STATE_ACTOR,
                 constants.TELEMETRY_ACTOR):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=spec.namespace), no_restart=True)
    with contextlib.suppress(Exception):
        registry.forget(spec)
    with contextlib.suppress(Exception):
        shipping.forget(spec)
    bridge.forget(spec)
