"""``raypipe dev``: a local Ray, the app deployed, reloaded on save until Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from raypipe.cli._app import (
    AppArg,
    HostOpt,
    PortOpt,
    StateOpt,
    _fail,
    _interrupt,
    _load,
    _skipped,
    _spec,
    command,
)
from raypipe.errors import ConfigError, RaypipeError


@command()
def dev(
    app_dir: AppArg = Path("."),
    port: PortOpt = None,
    host: HostOpt = None,
    state: StateOpt = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of a local Ray (default all).")] = None,
    reload: Annotated[bool, typer.Option(
        help="Reload on save: a changed, added or removed file of the app is live in about "
             "a second (--no-reload: serve this version until Ctrl-C).")] = True,
) -> None:
    """Start (or join, with RAY_ADDRESS) Ray, deploy the app, and serve it until Ctrl-C."""
    overrides = {"port": port, "host": host, "state": state, "dev": True}
    spec = _spec(app_dir, env_in_version=True, **overrides)
    loaded = _load(spec)
    if loaded.skipped:
        typer.secho(_skipped(loaded), fg=typer.colors.YELLOW, err=True)
    import os

    if not os.environ.get("RAY_ADDRESS"):
        _port_free(spec.settings.host, spec.settings.port)
    from raypipe.runtime.watch import AppWatcher

    # From before the deploy: a save while it runs is reloaded once it is up.
    watcher = AppWatcher(app_dir).start() if reload else None
    import logging

    import ray

    from raypipe.runtime import clusters
    from raypipe.runtime.deploy import connect, deploy, gcs_address, teardown

    # Serve says at INFO that a deploy joins the Serve it started a moment ago; Ray warns
    # that it turned token authentication on, as it does for every new local cluster (the
    # CLI's record of the cluster keeps the mode, docs/security.md). Set once Serve is
    # imported: its import sets its logger's level to INFO.
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)

    cluster = connect(start=True, namespace=spec.namespace, num_cpus=num_cpus,
                      settings=spec.settings)
    address = gcs_address()
    # SIGTERM (a supervisor, `kill`) cleans up like Ctrl-C; SIGINT is set explicitly because a
    # shell starts background jobs with it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        # A cluster of its own reads the files here; one joined gets them shipped.
        deployment = deploy(spec, ship=not cluster.started)
        clusters.record(spec.settings.name, address, spec.root)
        clusters.record(spec.settings.name, address)
        typer.secho(f"\nraypipe app '{spec.settings.name}' is running", bold=True)
        typer.echo(f"  HTTP       {deployment.url}")
        typer.echo(f"  Workbench  {deployment.workbench_url}")
        typer.echo(f"  API docs   {deployment.docs_url}")
        typer.echo(f"  Dashboard  {cluster.dashboard_url or '(not available)'}")
        typer.echo(f"  Namespace  {spec.namespace}")
        typer.echo(("Reloading on save; p" if reload else "P") + "ress Ctrl-C to stop.\n")
        sys.stdout.flush()  # a pipe (`raypipe dev | tee`) sees the banner now
        if watcher is not None:
            _reload_on_save(watcher, overrides, deployment.spec, ship=not cluster.started)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("\nstopping...")
    except RaypipeError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    finally:
        if watcher is not None:
            watcher.stop()
        clusters.forget(spec.settings.name, address, spec.root)
        clusters.forget(spec.settings.name, address)
        if cluster.started:
            # We own this Ray: shutting it down ends its processes, Serve's included (a
            # serve.shutdown() first left its controller's graceful_shutdown task to fail
            # loudly as the node went away).
            ray.shutdown()
        else:
            teardown(spec)
            ray.shutdown()


def _port_free(host: str, port: int) -> None:
    """Refuse at once, in one line, a port something else listens on (Serve would retry
    for a minute, then fail with a traceback)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds it
        try:
            s.bind((host, port))
        except OSError as exc:
            _fail(f"{host}:{port} is in use ({exc.strerror}); stop what listens there, or "
                  "choose another port with --port", 2)


def _reload_on_save(watcher: Any, overrides: dict[str, Any], running: Any, *,
                    ship: bool) -> None:
    """Each save that changes the app's files (and one made while it deployed): the new
    version, live where it loads; a version that does not load is reported, and the running
    one keeps serving."""
    from raypipe.runtime.deploy import ready_to_reload, reload
    from raypipe.runtime.spec import AppSpec
    from raypipe.runtime.watch import changed_names

    with contextlib.suppress(Exception):  # only sooner: reload() connects anyway
        ready_to_reload(running)

    # The version of the files as last read here. A shipped version leaves .env out, so it
    # is not comparable: then the files as read now (a save during that deploy is missed).
    seen = running.version
    if ship:
        with contextlib.suppress(ConfigError, OSError):
            seen = AppSpec.from_dir(watcher.root, env_in_version=True, **overrides).version
    # First: whatever changed while it deployed (the files already seen named).
    burst: set[Any] | None = watcher.next(timeout=0.1) or set()
    while True:
        if burst is None:
            burst = watcher.next(timeout=0.5)  # short: Ctrl-C is seen between waits
            continue
        t0 = time.monotonic()
        names = changed_names(burst) or ["the app"]
        burst = None
        try:
            spec = AppSpec.from_dir(watcher.root, env_in_version=True, **overrides)
        except (ConfigError, OSError) as exc:  # a file gone between its listing and its read
            typer.secho(f"not reloaded: {exc}", fg=typer.colors.RED, err=True)
            continue
        if spec.version == seen:
            continue  # nothing the app is made of changed (a cache, a scratch file)
        seen = spec.version
        try:
            running = reload(running, spec, ship=ship)
        except RaypipeError as exc:  # AppLoadError names every file and field
            typer.secho(f"not reloaded ({', '.join(names)}); version {running.version} keeps "
                        f"serving: {exc}", fg=typer.colors.RED, err=True)
            continue
        except Exception as exc:  # Ray's own (an actor restarting): the loop goes on
            typer.secho(f"not reloaded ({', '.join(names)}); version {running.version} keeps "
                        f"serving: {type(exc).__name__}: {exc}", fg=typer.colors.RED, err=True)
            continue
        typer.echo(f"reloaded {', '.join(names)}: version {running.version} is live "
                   f"({(time.monotonic() - t0) * 1000:.0f} ms)")
        sys.stdout.flush()
