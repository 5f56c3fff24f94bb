"""The ``raypipe`` command. Ray is imported inside the commands that need it, so ``--help``,
``flows`` and load checks stay fast."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from raypipe.errors import AppLoadError, ConfigError, RaypipeError

app = typer.Typer(help="Motia-style workflows on Ray.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
state_app = typer.Typer(help="Read and write the app's state.", no_args_is_help=True)
app.add_typer(state_app, name="state")
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

AppArg = Annotated[Path, typer.Argument(help="The app directory.")]
AppOpt = Annotated[Path, typer.Option("--app", "-a", help="The app directory.")]
PortOpt = Annotated[int | None, typer.Option(help="HTTP port (default 3111).")]
HostOpt = Annotated[str | None, typer.Option(help="HTTP host (default 127.0.0.1).")]
StateOpt = Annotated[str | None, typer.Option(help="State backend: memory or a redis:// URL.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        _fail(f"{what} is not valid JSON: {exc}", 2)


def _spec(app_dir: Path, **overrides: Any) -> Any:
    from raypipe.runtime.spec import AppSpec

    if not app_dir.is_dir():
        _fail(f"{app_dir} is not a directory", 2)
    try:
        return AppSpec.from_dir(app_dir, **overrides)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _load(spec: Any) -> Any:
    from raypipe.loader import load_app

    try:
        return load_app(spec.root, spec.settings)
    except AppLoadError as exc:
        _fail(str(exc))


def _join(spec: Any) -> None:
    """Connect to the running cluster that serves ``spec``'s app."""
    from raypipe.runtime.deploy import connect

    try:
        connect(namespace=spec.namespace, app=spec.settings.name, app_root=spec.root)
    except RaypipeError as exc:
        _fail(str(exc))
    except (ConnectionError, RuntimeError) as exc:
        _fail(f"no Ray cluster to join ({exc}); start the app with `raypipe dev` first, or set "
              "RAY_ADDRESS")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@app.command()
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

    # Serve says at INFO that a deploy joins the Serve it started a moment ago; Ray warns
    # that it turned token authentication on, as it does for every new local cluster (the
    # CLI's record of the cluster keeps the mode, docs/security.md).
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)

    from raypipe.runtime import clusters
    from raypipe.runtime.deploy import connect, deploy, gcs_address, teardown

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
    from raypipe.runtime.deploy import reload
    from raypipe.runtime.spec import AppSpec

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
        names = sorted({Path(p).name for _, p in burst}) or ["the app"]
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


@app.command()
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
    """Deploy the app onto an existing cluster (RAY_ADDRESS) and return. A redeploy checks
    the new version first and leaves the running one serving if a check fails."""
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


@app.command()
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
        stats = ray.get(rt.dispatcher.stats.remote())
    except RaypipeError as exc:
        _fail(str(exc))
    name = constants.serve_app_name(spec.settings.name)
    apps = serve.status().applications
    deployment = apps[name].status if name in apps else "not deployed"
    actors = []
    for actor_name in (constants.DISPATCHER_ACTOR, constants.STATE_ACTOR,
                       constants.STREAMS_ACTOR, constants.TELEMETRY_ACTOR):
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
    typer.echo(f"version     {running}" + ("" if running == spec.version else
                                          f" (the files here are {spec.version})"))
    typer.echo(f"actors      {', '.join(actors)}")
    typer.echo(f"in flight   {stats['in_flight']} (the queue depth)")
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


@app.command()
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


@app.command()
def enqueue(
    topic: Annotated[str, typer.Argument(help="The topic.")],
    data: Annotated[str, typer.Argument(help="The message, as JSON.")] = "{}",
    app_dir: AppOpt = Path("."),
    group_id: Annotated[str | None, typer.Option(help="FIFO message group.")] = None,
) -> None:
    """Send a message to every step subscribed to TOPIC (exit 1 if no step is)."""
    spec = _spec(app_dir)
    loaded = _load(spec)
    payload = _json_arg(data, "DATA")
    if not loaded.subscribers(topic):
        known = sorted({t for s in loaded.steps.values() for t in s.subscribes})
        _fail(f"no step subscribes to {topic!r}; the app's topics: "
              f"{', '.join(known) or '(none)'}")
    _join(spec)
    from raypipe.enqueue import publish
    from raypipe.messages import new_id
    from raypipe.runtime.bridge import runtime_for

    trace_id = new_id()
    try:
        message_id = asyncio.run(publish(loaded, runtime_for(spec), topic, payload,
                                         trace_id=trace_id, group_id=group_id))
    except RaypipeError as exc:
        _fail(str(exc))
    subscribers = [s.name for s in loaded.subscribers(topic)]
    typer.echo(json.dumps({"messageId": message_id, "traceId": trace_id,
                           "deliveredTo": subscribers}))


def _runtime_call(app_dir: Path, part: str, method: str, *args: Any) -> Any:
    """Call ``runtime.<part>.<method>(*args)`` on the running app."""
    spec = _spec(app_dir)
    _join(spec)
    from raypipe.runtime.bridge import runtime_for

    try:
        return asyncio.run(getattr(getattr(runtime_for(spec), part), method)(*args))
    except RaypipeError as exc:
        _fail(str(exc))


def _state_call(app_dir: Path, method: str, *args: Any) -> Any:
    from raypipe.messages import new_id
    from raypipe.runtime_protocols import Origin

    if method in ("set", "delete", "clear", "update"):
        args = (*args, Origin(new_id(), "cli"))
    return _runtime_call(app_dir, "state", method, *args)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@state_app.command("get")
def state_get(group: str, key: str, app_dir: AppOpt = Path(".")) -> None:
    """Print one item (exit 1 if it does not exist)."""
    value = _state_call(app_dir, "get", group, key)
    if value is None:
        _fail(f"no item {key!r} in group {group!r}")
    _print(value)


@state_app.command("list")
def state_list(
    group: Annotated[str | None, typer.Argument(help="A group; without it, the groups.")] = None,
    app_dir: AppOpt = Path("."),
) -> None:
    """List a group's items as {id, data}, or every group's name."""
    _print(_state_call(app_dir, "list", group) if group else _state_call(app_dir, "list_groups"))


@state_app.command("set")
def state_set(group: str, key: str, value: str, app_dir: AppOpt = Path(".")) -> None:
    """Store VALUE (JSON) as an item; state triggers fire as for any write."""
    _old, new = _state_call(app_dir, "set", group, key, _json_arg(value, "VALUE"))
    _print(new)


@state_app.command("delete")
def state_delete(group: str, key: str, app_dir: AppOpt = Path(".")) -> None:
    """Delete an item; prints what it held (exit 1 if it does not exist)."""
    old = _state_call(app_dir, "delete", group, key)
    if old is None:
        _fail(f"no item {key!r} in group {group!r}")
    _print(old)


@dlq_app.command("list")
def dlq_list(app_dir: AppOpt = Path(".")) -> None:
    """One line per dead letter: id, step, topic, attempts, last error."""
    entries = _runtime_call(app_dir, "dead_letters", "list")
    if not entries:
        typer.echo("no dead letters")
    for e in entries:
        typer.echo(f"{e['id']}  {e['step']}  {e['topic'] or e['kind']}  "
                   f"attempts={len(e['errors'])}  {e['errors'][-1]['error']}")


@dlq_app.command("show")
def dlq_show(entry_id: str, app_dir: AppOpt = Path(".")) -> None:
    """A dead letter in full: message, trace id, every attempt's error and traceback."""
    entry = _runtime_call(app_dir, "dead_letters", "get", entry_id)
    if entry is None:
        _fail(f"no dead letter {entry_id!r}")
    _print(entry)


@dlq_app.command("replay")
def dlq_replay(
    entry_id: Annotated[str | None, typer.Argument(help="The dead letter to replay.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    app_dir: AppOpt = Path("."),
) -> None:
    """Run a dead letter (or all) again: the same delivery, with a fresh set of attempts;
    what its failed attempts applied is not applied twice."""
    if (entry_id is None) == (not all_):
        _fail("give one dead letter ID or --all", 2)
    replayed = _runtime_call(app_dir, "dead_letters", "replay", None if all_ else [entry_id])
    if entry_id is not None and not replayed:
        _fail(f"no dead letter {entry_id!r}")
    typer.echo(json.dumps({"replayed": replayed}))


@app.command()
def watch(
    stream: Annotated[str, typer.Argument(help="The stream, e.g. workflows.")],
    group: Annotated[str, typer.Argument(help="The group, e.g. active-workflows.")],
    item_id: Annotated[str | None, typer.Argument(help="Only this item.")] = None,
    app_dir: AppOpt = Path("."),
    done: Annotated[str, typer.Option(help="Field counting progress.")] = "completedSteps",
    total: Annotated[str, typer.Option(help="Field holding the total.")] = "totalSteps",
    until_complete: Annotated[
        bool, typer.Option("--until-complete", help=(
            "Exit once every item that moved while watching is complete (with ITEM_ID: "
            "once it is)."))
    ] = False,
) -> None:
    """Follow a stream live: one progress bar per item, filling as its steps complete."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    spec = _spec(app_dir)
    _join(spec)
    from raypipe.runtime.subscribe import subscribe

    async def follow() -> None:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn()) as progress:
            bars: dict[str, Any] = {}
            full: dict[str, bool] = {}
            #: Items changed since the sync: an item a run finished earlier is not this one.
            moved: set[str] = set()

            def show(item: dict[str, Any]) -> None:
                key = str(item.get("id"))
                n, of = item.get(done), item.get(total)
                if not isinstance(n, (int, float)) or not isinstance(of, (int, float)):
                    return
                if key not in bars:
                    bars[key] = progress.add_task(key[:36], total=of)
                progress.update(bars[key], completed=n, total=of)
                full[key] = n >= of

            async for message in subscribe(stream, group, item_id, app=spec):
                event = message["event"]
                if event["type"] == "sync":
                    data = event["data"]
                    for item in data if isinstance(data, list) else [data] if data else []:
                        show(item)
                elif event["type"] in ("create", "update"):
                    show(event["data"])
                    moved.add(str(event["data"].get("id")))
                elif event["type"] == "delete" and str(message.get("id")) in bars:
                    progress.remove_task(bars.pop(str(message.get("id"))))
                    full.pop(str(message.get("id")), None)
                elif event["type"] == "error":
                    _fail(event["data"]["message"])
                if until_complete and _complete(item_id, moved, full):
                    return

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow())


def _complete(item_id: str | None, moved: set[str], full: dict[str, bool]) -> bool:
    """``watch --until-complete``: the one item asked for is full, or every item that moved
    while watching is (and one did)."""
    if item_id is not None:
        return full.get(item_id, False)
    watched = moved & full.keys()
    return bool(watched) and all(full[k] for k in watched)


_SCAFFOLD = {
    "pyproject.toml": """[project]
name = "{name}"
version = "0.1.0"
dependencies = ["raypipe"]

[tool.raypipe]
name = "{name}"
port = 3111
""",
    "steps/hello_api_step.py": """from pydantic import BaseModel

from raypipe import ApiRequest, FlowContext, StepConfig, http


class Hello(BaseModel):
    name: str = "world"


config = StepConfig(
    name="hello-api",
    description="Greets, and hands the greeting to a queue step",
    triggers=[http("POST", "/hello", body_schema=Hello)],
    enqueues=["hello.said"],
    flows=["hello"],
)


async def handler(request: ApiRequest, ctx: FlowContext) -> dict:
    await ctx.enqueue("hello.said", {"name": request.body.name})
    return {"status": 200, "body": {"message": f"hello, {request.body.name}"}}
""",
    "steps/count_hellos_step.py": """from raypipe import FlowContext, StepConfig, queue

config = StepConfig(
    name="count-hellos",
    description="Counts greetings per name",
    triggers=[queue("hello.said")],
    flows=["hello"],
)


async def handler(message: dict, ctx: FlowContext) -> None:
    await ctx.state.update("hellos", message["name"], [{"type": "increment", "path": "n"}])
    ctx.logger.info("counted a hello", name=message["name"])
""",
}


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The new app's directory (and name).")],
) -> None:
    """Scaffold an app: an http step that enqueues, and a queue step that updates state."""
    root = Path(name)
    if root.exists() and any(root.iterdir()):
        _fail(f"{root} exists and is not empty", 2)
    for rel, text in _SCAFFOLD.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{name}", root.name))
    typer.echo(f"created {root}/ — run it with: raypipe dev {root}")


@app.command()
def flows(
    app_dir: AppArg = Path("."),
    format: Annotated[str, typer.Option("--format", "-f", help="text, mermaid or json.")] = "text",
    flow: Annotated[str | None, typer.Option(help="Only this flow.")] = None,
) -> None:
    """Show the app's steps, topics and edges."""
    from raypipe import flows as fl

    renderers: dict[str, Callable[[fl.FlowGraph], str]] = {
        "text": fl.to_text,
        "mermaid": fl.to_mermaid,
        "json": lambda g: json.dumps(fl.to_json(g), indent=2),
    }
    if format not in renderers:
        _fail(f"--format must be one of {', '.join(renderers)}", 2)
    loaded = _load(_spec(app_dir))
    try:
        graph = fl.build_graph(loaded, flow)
    except ValueError as exc:
        _fail(str(exc), 2)
    typer.echo(renderers[format](graph))
    if loaded.skipped:  # on stderr: the diagram on stdout stays machine-readable
        typer.secho(_skipped(loaded), fg=typer.colors.YELLOW, err=True)


def _skipped(loaded: Any) -> str:
    files = loaded.skipped
    return (f"{len(files)} step file(s) in another language, not run (raypipe runs Python "
            f"steps): {', '.join(files)}")


def main() -> None:
    try:
        app()
    except RaypipeError as exc:  # pragma: no cover - commands report their own
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
