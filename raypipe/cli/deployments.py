"""``raypipe start``, ``status`` and ``stop``: an app on an existing cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from raypipe.cli._app import (
    AppArg,
    HostOpt,
    PortOpt,
    StateOpt,
    _fail,
    _join,
    _load,
    _spec,
    command,
)
from raypipe.errors import RaypipeError


@command()
def start(
    app_dir: AppArg = Path("."),
    port: PortOpt = None,
    host: HostOpt = None,
    state: StateOpt = None,
    change_state: Annotated[bool, typer.Option(
        help="Move a running app to the state backend given (its state does not follow).")
    ] = False,
    ship: Annotated[bool, typer.Option(
        help="Ship the app's files with the deploy (--no-ship: every node reads them at "
             "this path).")] = True,
) -> None:
    """Deploy the app onto an existing cluster (RAY_ADDRESS) and return.

    A redeploy checks the new version first and leaves the running one serving if a check
    fails."""
    spec = _spec(app_dir, port=port, host=host, state=state)
    _load(spec)
    _join(spec)
    from raypipe.runtime import clusters
    from raypipe.runtime.deploy import deploy, gcs_address

    try:
        deployment = deploy(spec, change_state=change_state, ship=ship)
    except RaypipeError as exc:
        _fail(str(exc))
    clusters.record(spec.settings.name, gcs_address(), spec.root)
    clusters.record(spec.settings.name, gcs_address())
    typer.echo(f"deployed '{spec.settings.name}' version {spec.version} at {deployment.url} "
               f"(namespace {spec.namespace}); workbench at {deployment.workbench_url}")


@command()
def status(app_dir: AppArg = Path(".")) -> None:
    """The running app: deployment, actors, deliveries in flight, dead letters, per step."""
    spec = _spec(app_dir)
    _join(spec)
    import ray
    from ray import serve

    from raypipe import constants
    from raypipe.runtime.bridge import runtime_for

    try:
        rt = runtime_for(spec)
        stats = asyncio.run(rt.stats(timeout=None))
    except RaypipeError as exc:
        _fail(str(exc))
    name = constants.serve_app_name(spec.settings.name)
    apps = serve.status().applications
    deployment = apps[name].status if name in apps else "not deployed"
    actors = []
    shards = range(spec.settings.shards)
    for actor_name in (*[constants.shard_actor(name, i)
                         for name in (constants.DISPATCHER_ACTOR, constants.STATE_ACTOR,
                                      constants.STREAMS_ACTOR) for i in shards],
                       constants.TELEMETRY_ACTOR):
        try:
            handle = ray.get_actor(actor_name, namespace=spec.namespace)
            ray.get(handle.ready.remote(), timeout=10)
            actors.append(f"{actor_name} alive")
        except Exception as exc:  # missing, restarting, or not answering
            actors.append(f"{actor_name} {type(exc).__name__}")
    totals = stats["steps"].get("*", {})
    typer.echo(f"app         {spec.settings.name} (namespace {spec.namespace})")
    typer.echo(f"http        {deployment}")
    typer.echo(f"state       {stats.get('state', spec.settings.state)}")
    running = stats.get("version", "")
    # `raypipe dev` counts the app's .env in its version, `raypipe start` (unless ship_env)
    # does not: the files here are the running version if either way of counting says so.
    same = running == spec.version or running == _spec(app_dir, env_in_version=True).version
    typer.echo(f"version     {running}" + ("" if same else
                                          f" (the files here are {spec.version})"))
    typer.echo(f"actors      {', '.join(actors)}")
    typer.echo(f"in flight   {stats['in_flight']} (the queue depth)")
    if "shards" in stats:
        typer.echo(f"shards      {len(stats['shards'])}: in flight " + ", ".join(
            str(s["in_flight"]) for s in stats["shards"]) + "; cron in shard " + ", ".join(
            str(i) for i, s in enumerate(stats["shards"]) if s["runs_crons"]))
        placed = [s.get("nodes") or [] for s in stats["shards"]]
        if any(placed):  # each shard's tasks go to its nodes first (docs/scaling.md)
            typer.echo("task nodes  " + "; ".join(
                f"shard {i}: " + ", ".join(n[:12] for n in nodes)
                for i, nodes in enumerate(placed)))
    typer.echo(f"dead        {stats['dead_letters']}")
    typer.echo(f"workflows   {totals.get('workflows_completed', 0)} completed, "
               f"{totals.get('workflows_dead_lettered', 0)} with a dead letter")
    steps = {k: v for k, v in stats["steps"].items() if k != "*"}
    oldest = stats.get("oldest_in_flight", {})
    if steps:
        cols = ("accepted", "done", "retries", "failed_attempts", "crashes", "dead_lettered")
        typer.echo(f"\n{'step':32} " + " ".join(f"{c:>15}" for c in cols)
                   + f" {'oldest in flight':>17}")
        for step in sorted(steps):
            age = f"{oldest[step]:.1f}s" if step in oldest else "-"
            typer.echo(f"{step:32} " + " ".join(f"{steps[step].get(c, 0):>15}" for c in cols)
                       + f" {age:>17}")
    pools = stats.get("pools") or {}
    if pools:
        cols = ("actors", "starting", "busy", "backlog", "min", "max")
        typer.echo(f"\n{'actor pool':32} " + " ".join(f"{c:>9}" for c in cols))
        for step in sorted(pools):
            typer.echo(f"{step:32} " + " ".join(f"{pools[step].get(c, 0):>9}" for c in cols))


@command()
def stop(app_dir: AppArg = Path(".")) -> None:
    """Remove the app from the cluster: its Serve application and its actors."""
    spec = _spec(app_dir)
    _join(spec)
    from raypipe.runtime import clusters
    from raypipe.runtime.deploy import teardown

    teardown(spec)
    clusters.forget(spec.settings.name, root=spec.root)
    clusters.forget(spec.settings.name)
    typer.echo(f"stopped '{spec.settings.name}'")
