"""Putting an app on a Ray cluster and taking it off again."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.experimental import internal_kv

from raypipe import constants
from raypipe.errors import RuntimeNotRunningError
from raypipe.http.guard import LOOPBACK_HOSTS
from raypipe.runtime import bridge, clusters, preflight, registry, shipping
from raypipe.runtime.ports import free_port
from raypipe.runtime.private_dir import private_dir
from raypipe.runtime.proxy_timeouts import HEADER_TIMEOUT_ENV
from raypipe.runtime.spec import AppSpec
from raypipe.settings import IngressMode, Settings

__all__ = [
    "FAST_SERVE_ENV",
    "HAPROXY_ENV",
    "WARM_WORKERS_ENV",
    "Cluster",
    "Deployment",
    "connect",
    "deploy",
    "ingress",
    "prepare_local_ray",
    "ready_to_reload",
    "reload",
    "shard_workers_env",
    "start_actors",
    "startup_concurrency_env",
    "teardown",
]

log = logging.getLogger("raypipe.deploy")


#: Serve's throughput-optimised settings that open no listener of their own: user code and
#: the router in the replica's main thread, a frozen GC, buffered request logs. Direct ingress
#: (a listener per replica) is left off: see :data:`HAPROXY_ENV`.
FAST_SERVE_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
                  # Else the replica's stderr, http steps' log lines with it, never reaches the
                  # `raypipe dev` terminal (queue steps' tasks' did).
                  "RAY_SERVE_LOG_TO_STDERR": "1"}

#: Serve's HAProxy ingress (``ingress = "haproxy"``; Linux, ray[serve] ships the binary): on
#: 2 CPUs several times the default proxy's requests/s and stream events in ~10 ms instead of
#: ~130 ms (bench/results). Not the default: Ray 2.60 binds every replica's port, HAProxy's
#: stats page and its metrics exporter on all interfaces, and gives its admin socket mode 666
#: (docs/security.md).
HAPROXY_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}

#: On the HAProxy path a replica being removed stays open at least this long (Serve's
#: default: 30 s) so that load balancers can take it out of rotation; every app teardown and
#: Ctrl-C of `raypipe dev` waited for it. The HAProxy of a Ray raypipe starts is on the same
#: machine and told at once, so a short window does.
LOCAL_DRAIN_ENV = {"RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2"}

#: The raylet ends an idle worker a second after it goes idle once its node has more workers
#: than CPUs, actors counted; a fan-out after a pause then starts its task workers again (about
#: 0.6 s of CPU each). Kept for a minute instead, a 10,000-step fan-out after a 3 s pause took
#: 2.8 s instead of 4.2-5.5 s, with no worker started, and plain Ray tasks were no slower
#: (bench/results/report.md). Raising the limit itself (``RAY_num_workers_soft_limit``) is not
#: the same: the raylet prestarts workers up to it for a long queue, and made plain Ray tasks
#: 2-3x slower. Set where raypipe starts Ray itself; for a `ray start` cluster, an option.
#: Seconds after a `raypipe dev` app first answers that its task workers are started.
WARM_DELAY_DEV = 3.0

WARM_WORKERS_ENV = {"RAY_idle_worker_killing_time_threshold_ms": "60000"}

#: Ray's own fixed ports (its autoscaler's and dashboard's Prometheus endpoints), each given a
#: free one so that two Rays on a host neither collide nor answer for each other.
_RAY_FIXED_PORTS = ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT")

#: Serve's fixed ports on the HAProxy path, each given a free one: every Ray on a host binds
#: the fallback proxy's 8500 with SO_REUSEPORT, and each app's HAProxy sends a request there
#: while its replica is down, so another app answered it.
_HAPROXY_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                  "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")


def _task_workers(settings: Settings, cpus: int) -> int:
    """The task workers one shard's tasks can hold at once on ``cpus``."""
    return cpus * max(1, math.ceil(1 / settings.task_num_cpus))


def shard_workers_env(settings: Settings, cpus: int | None = None) -> dict[str, str]:
    """What a node of a Ray running an app of several shards needs: Ray runs the tasks each
    detached actor spawns in workers of its own, so each dispatcher shard has its own set,
    and a raylet ends idle workers past its soft limit (its CPU count by default), which
    then start again, importing the app, at every lull. The limit is raised to what the
    shards' tasks can hold at once (docs/scaling.md)."""
    if settings.shards == 1:
        return {}
    limit = settings.shards * _task_workers(settings, cpus or os.cpu_count() or 1)
    return {"RAY_num_workers_soft_limit": str(limit)}


#: Ray's own actors of an app besides the per-shard ones: Serve's controller and proxy, the
#: streams, telemetry and object-keeper actors.
_FIXED_ACTORS = 5


def startup_concurrency_env(settings: Settings, cpus: int | None = None) -> dict[str, str]:
    """The raylet warns ("N worker processes have been started ... 4x the maximum expected
    startup concurrency") once a node holds 4x as many workers as it may start at once, which
    is its CPU count: an app's actors and its fractional-CPU task workers (4 a CPU by
    default) pass that on a small machine in its first workflow, a normal run that warrants
    no warning. The concurrency is raised to half what the app itself runs, so the warning
    keeps its meaning for twice that (actor pools, workers blocked in ``ray.get``)."""
    cpus = cpus or os.cpu_count() or 1
    expected = (_FIXED_ACTORS + settings.ingress_replicas
                + settings.shards * (2 + _task_workers(settings, cpus)))
    return {"RAY_worker_maximum_startup_concurrency": str(max(cpus, math.ceil(expected / 2)))}


def prepare_local_ray(settings: Settings | None = None, cpus: int | None = None) -> None:
    """Set up the environment of a Ray this process is about to start (unless it already says
    otherwise), from the app's ``settings``: :data:`FAST_SERVE_ENV` (or :data:`HAPROXY_ENV`),
    :data:`LOCAL_DRAIN_ENV`, :data:`WARM_WORKERS_ENV`, :func:`shard_workers_env`,
    :func:`startup_concurrency_env` (for ``cpus``, else this machine's count), and the
    request-head timeout of Serve's proxy (:mod:`raypipe.runtime.proxy_timeouts`). Ray's
    fixed metrics ports are chosen free; on the HAProxy path, every port Serve would fix is
    too, and HAProxy's config, state and admin socket live in a folder of this user's
    alone."""
    settings = settings or Settings()
    chosen = HAPROXY_ENV if settings.ingress == IngressMode.HAPROXY else FAST_SERVE_ENV
    head = {"RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "raypipe.runtime.proxy_timeouts:install",
            HEADER_TIMEOUT_ENV: str(settings.ingress_header_timeout_seconds)}
    for key, value in {**chosen, **LOCAL_DRAIN_ENV, **WARM_WORKERS_ENV, **head,
                       **shard_workers_env(settings, cpus),
                       **startup_concurrency_env(settings, cpus)}.items():
        os.environ.setdefault(key, value)
    for key in _RAY_FIXED_PORTS:
        os.environ.setdefault(key, str(free_port()))
    if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
        for key in _HAPROXY_PORTS:
            os.environ.setdefault(key, str(free_port()))
        folder = _haproxy_dir()
        for key, name in (("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "haproxy.cfg"),
                          ("RAY_SERVE_HAPROXY_SOCKET_PATH", "admin.sock"),
                          ("RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH", "metrics.sock"),
                          ("RAY_SERVE_HAPROXY_SERVER_STATE_FILE", "server-state")):
            os.environ.setdefault(key, str(folder / name))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_BASE", str(folder))


#: Serve puts HAProxy's sockets at ``<folder>/<node id: 56 characters>/metrics.sock``, and
#: HAProxy takes socket paths of 97 characters at most: the folder gets what is left.
_HAPROXY_DIR_MAX = 97 - len("/" + "0" * 56 + "/metrics.sock")


def _haproxy_dir() -> Path:
    """A fresh folder for one Ray's HAProxy, inside this user's own, short enough for its
    socket paths (under /tmp if the temporary directory's path is too long)."""
    name = "h" + uuid.uuid4().hex[:6]
    folder = private_dir(name)
    if len(str(folder)) > _HAPROXY_DIR_MAX:
        folder.rmdir()
        folder = private_dir(name, base="/tmp")
    return folder


@dataclass(frozen=True)
class Cluster:
    #: Whether this process started Ray (and so must stop it).
    started: bool
    dashboard_url: str | None


def connect(address: str | None = None, *, start: bool = False, namespace: str | None = None,
            app: str | None = None, app_root: str | None = None,
            settings: Settings | None = None, **init_kwargs: Any) -> Cluster:
    """Join ``address``, else ``RAY_ADDRESS``, else the cluster recorded for ``app`` (at
    ``app_root``, else by name) by its last deploy (:mod:`raypipe.runtime.clusters`), with
    the auth mode that cluster needs; with none of them, start a new local Ray if ``start``
    (set up for the app's ``settings``), or fail saying how to name one. Never an arbitrary
    Ray of the host."""
    if ray.is_initialized():
        return Cluster(False, None)
    address = address or os.environ.get("RAY_ADDRESS")
    if not address and app:
        found = clusters.recorded(app, app_root) or clusters.recorded(app)
        if found is not None:
            address = found.address
            _join_auth(found.auth)
            if not _answers(address):
                raise RuntimeNotRunningError(
                    f"the Ray cluster recorded for app {app!r} at {address} does not answer "
                    "(its `raypipe dev` stopped?); start the app again, or set RAY_ADDRESS")
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
        prepare_local_ray(settings, kwargs.get("num_cpus"))
        info = ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
                        **kwargs)
        started = True
    url = info.dashboard_url
    return Cluster(started, f"http://{url}" if url and "://" not in url else url or None)


def _join_auth(auth: dict[str, str]) -> None:
    """Take on the recorded cluster's auth mode (unless this environment sets its own). Ray
    reads ``RAY_AUTH_MODE`` into its config when it is imported, so the config is read again,
    as Ray itself does where it turns token auth on for a new local cluster."""
    changed = False
    for key, value in auth.items():
        if key not in os.environ:
            os.environ[key] = value
            changed = True
    if changed:
        try:
            from ray._raylet import Config  # type: ignore[attr-defined]

            Config.initialize("")
        except Exception:  # a private API: the variable alone still reaches a new process
            log.debug("Ray's config was not read again", exc_info=True)


def _answers(address: str, timeout: float = 2.0) -> bool:
    """Whether something listens at ``host:port`` (a recorded GCS): Ray's own client retries
    a dead address for a minute, printing a connection error every few seconds."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout):
            return True
    except (OSError, ValueError):
        return False


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


def _start_actor(cls: Any, name: str, spec: AppSpec, *args: Any) -> Any:
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(name, namespace=spec.namespace))
    options: dict[str, Any] = {}
    if args and spec.settings.shards > 1:
        # A shard's actor: spread over the cluster's nodes, not all on the head.
        options["scheduling_strategy"] = "SPREAD"
    return cls.options(name=name, namespace=spec.namespace, lifetime="detached",
                       **options).remote(spec, *args)


def _actor_classes(spec: AppSpec) -> list[tuple[Any, str, tuple[int, ...]]]:
    """Each actor of the app: its class, name and arguments past the spec (a shard's
    number); shard 0's dispatcher last, as it reaches the others while it starts."""
    from raypipe.runtime.dispatcher import Dispatcher
    from raypipe.runtime.state_actor import StateActor
    from raypipe.runtime.streams_actor import StreamsActor
    from raypipe.runtime.telemetry_actor import TelemetryActor

    shards = range(spec.settings.shards)
    return [(TelemetryActor, constants.TELEMETRY_ACTOR, ()),
            *[(StateActor, constants.shard_actor(constants.STATE_ACTOR, i), (i,))
              for i in shards],
            *[(StreamsActor, constants.shard_actor(constants.STREAMS_ACTOR, i), (i,))
              for i in shards],
            *[(Dispatcher, constants.shard_actor(constants.DISPATCHER_ACTOR, i), (i,))
              for i in reversed(shards)]]


def app_actor_names(spec: AppSpec) -> list[str]:
    """The names of the app's long-lived actors that run now, whatever its shards were."""
    try:
        named = ray.util.list_named_actors(all_namespaces=True)
    except Exception:  # an old or unreachable GCS: the names this spec would give them
        return [name for _, name, _ in _actor_classes(spec)]
    return [a["name"] for a in named
            if a["namespace"] == spec.namespace and a["name"].startswith("raypipe:")
            and not a["name"].startswith(constants.POOL_ACTOR_PREFIX)]


def start_actors(spec: AppSpec, *, replace: bool = False) -> list[Any]:
    """Start the app's detached actors (telemetry, state, streams, dispatcher), or, where they
    run already, move them to ``spec``'s version in place: state, streams, dead letters and
    deliveries in flight stay. ``replace`` restarts them instead (a change of state backend).
    Returns what to wait on for new actors to be ready (``ray.get`` it): the caller may start
    the ingress meanwhile.

    The caller checked the app first (:mod:`raypipe.runtime.preflight`)."""
    bridge.forget(spec)
    classes = _actor_classes(spec)
    running: dict[str, Any] = {}
    if not replace:
        for _, name, _ in classes:
            with contextlib.suppress(ValueError):
                running[name] = ray.get_actor(name, namespace=spec.namespace)
    if len(running) == len(classes):
        ray.get([running[name].reload.remote(spec) for _, name, _ in classes])
        # Recorded once every actor runs it: until then a restarted actor runs the last one.
        registry.record(spec)
        return []
    registry.record(spec)  # what the new actors read as they start
    # A keeper of the last run holds values no new actor names: it goes, and the first put
    # starts a new one. So do the shards of a run with more shards than this one.
    wanted = {name for _, name, _ in classes}
    for name in app_actor_names(spec):
        if name not in wanted:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace=spec.namespace), no_restart=True)
    actors = [_start_actor(cls, name, spec, *args) for cls, name, args in classes]
    return [a.ready.remote() for a in actors]


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
    # Serve's controller and proxy start while the app is checked, and the actors start while
    # the ingress replica does: on a new cluster those are most of a deploy's time.
    with ThreadPoolExecutor(1, thread_name_prefix="raypipe-serve-start") as pool:
        serving = pool.submit(start_serve, host, port, spec.settings)
        try:
            preflight.check(spec, change_state=change_state, serve=False)
        finally:
            serving.result()
    preflight.route_prefix_free(spec)  # Serve's apps are known once it runs
    if ship:
        spec = shipping.ship(spec)
    starting = start_actors(spec, replace=change_state)
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
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    deployment = Deployment(spec, f"http://{shown}:{port}{'' if prefix == '/' else prefix}")
    # Not blocking: Serve's own wait polls the app's status once a second, and returned up to
    # a second after the app answered (raypipe dev's reloads waited for it).
    serve._run(ingress(spec), _blocking=False,  # type: ignore[attr-defined]
               name=constants.serve_app_name(spec.settings.name), route_prefix=prefix)
    ray.get(starting)  # an actor that failed to start says so here
    wait_serving(spec, deployment.url)
    if starting:
        # Task workers start once the app answers: on a small machine they would compete
        # with its start-up, and they are there for its first workflow. Under `raypipe dev`
        # a moment later still: a save made as the app first answers reloads in a quarter
        # of a second when they are not starting too, in two when they are.
        for shard in range(spec.settings.shards):
            ray.get_actor(constants.shard_actor(constants.DISPATCHER_ACTOR, shard),
                          namespace=spec.namespace).warm.remote(
                WARM_DELAY_DEV if spec.settings.dev else 0.0)
    return deployment


def reload(running: AppSpec, spec: AppSpec, *, ship: bool = False) -> AppSpec:
    """``raypipe dev``'s reload: move the running app (``running``) to ``spec``'s version.
    The new version must load first (an :class:`~raypipe.errors.AppLoadError` changes
    nothing); then the actors move in place, and the ingress replica swaps its routes
    without a new replica. A change of settings that a running replica cannot take (its
    route prefix, its replicas) is a full :func:`deploy` instead. Returns the spec now
    running (shipped, with ``ship``)."""
    if spec.settings != running.settings:
        return deploy(spec, ship=ship).spec  # its own checks load the app
    app = preflight.load(spec)
    preflight.schedulable(app, spec)
    if ship:
        spec = shipping.ship(spec)
    one_replica = spec.settings.ingress_replicas == 1 and not spec.settings.autoscaling_config
    # The replica builds the new routes while the actors move; it serves them only after, so
    # a request never reaches a version the dispatcher does not run yet.
    handle = _ingress_handle(spec) if one_replica else None  # one look-up, two calls
    preparing = handle.prepare.remote(spec) if handle is not None else None
    start_actors(spec)
    if handle is not None and preparing is not None:
        preparing.result(timeout_s=ROUTABLE_TIMEOUT)
        handle.reload.remote(spec).result(timeout_s=ROUTABLE_TIMEOUT)
    else:  # a call reaches one replica: Serve replaces them all instead
        serve.run(ingress(spec), name=constants.serve_app_name(spec.settings.name),
                  route_prefix=spec.settings.route_prefix)
    return spec


def _ingress_handle(spec: AppSpec) -> Any:
    return serve.get_deployment_handle(constants.INGRESS_DEPLOYMENT,
                                       constants.serve_app_name(spec.settings.name))


def ready_to_reload(spec: AppSpec, timeout: float = 5.0) -> None:
    """Connect this process to the ingress replica before the first save: the first call of
    a process's handles waits for Serve's controller to tell it the replicas (a few tenths of
    a second here), and the first reload would pay it. Short: saves wait until it returns."""
    _ingress_handle(spec).version.remote().result(timeout_s=timeout)


#: Times Serve's start is tried.
SERVE_START_ATTEMPTS = 3


def start_serve(host: str, port: int, settings: Settings | None = None) -> None:
    """``serve.start``, tried again when Serve's proxy dies while it starts: on a starved
    machine the controller can miss the new proxy's health check and kill it before it ever
    runs (an ActorDiedError out of ``serve.start``). ``settings`` give the proxy's idle and
    request timeouts (Serve keeps those of its first start on a cluster)."""
    settings = settings or Settings()
    options: dict[str, Any] = {"host": host, "port": port,
                               "keep_alive_timeout_s": settings.ingress_idle_timeout_seconds}
    if settings.ingress_request_timeout_seconds is not None:
        options["request_timeout_s"] = settings.ingress_request_timeout_seconds
    for attempt in range(1, SERVE_START_ATTEMPTS + 1):
        try:
            serve.start(http_options=options)
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


def wait_serving(spec: AppSpec, url: str, timeout: float = ROUTABLE_TIMEOUT) -> None:
    """Return once the app answers its health route through Serve's proxy, naming itself
    and this version (another app's Serve, or the last version's replica while the new one
    starts, may answer the port meanwhile). While Serve deploys it, this waits as
    ``serve.run`` does; a deploy Serve gives up on raises :class:`RuntimeError` with Serve's
    message, as ``serve.run`` does. From a client off the cluster the address may not be
    reachable: once Serve says the app runs, not answering within ``timeout`` is only
    logged."""
    health = url.rstrip("/") + "/_raypipe/health"
    app_name = constants.serve_app_name(spec.settings.name)
    deadline: float | None = None  # from when Serve says the app runs
    last = "no answer"
    next_status = 0.0
    while deadline is None or time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=5) as reply:
                body = json.loads(reply.read() or b"{}")
                if (reply.status == 200 and body.get("app") == spec.settings.name
                        and body.get("version") == spec.version):
                    return
                last = f"HTTP {reply.status}, version {body.get('version')!r}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if deadline is None and time.monotonic() >= next_status:  # a controller call: less often
            next_status = time.monotonic() + 0.5
            status = serve.status().applications.get(app_name)
            if status is not None and status.status == "DEPLOY_FAILED":
                # The app's message only names the deployment; the deployment's says why.
                why = [d.message for d in status.deployments.values() if d.message]
                raise RuntimeError(f"Deploying application {app_name} failed: "
                                   + "\n".join([status.message, *why]))
            if status is not None and status.status == "RUNNING":
                deadline = time.monotonic() + timeout
        time.sleep(0.05)
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
    for name in sorted(set(app_actor_names(spec)) | {constants.OBJECTS_ACTOR}):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=spec.namespace), no_restart=True)
    with contextlib.suppress(Exception):
        registry.forget(spec)
    with contextlib.suppress(Exception):
        shipping.forget(spec)
    with contextlib.suppress(Exception):
        internal_kv._internal_kv_del(
            constants.TALLY_KEY.format(namespace=spec.namespace).encode())
        for shard in range(1, spec.settings.shards):
            internal_kv._internal_kv_del(constants.SHARD_TALLY_KEY.format(
                namespace=spec.namespace, shard=shard).encode())
    bridge.forget(spec)
