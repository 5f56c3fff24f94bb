"""Every actor name, namespace and storage key prefix raypipe uses, in one place."""

from __future__ import annotations

import re

#: Ray namespace of an app: ``raypipe.<app name>``; two apps never share actors.
NAMESPACE_PREFIX = "raypipe."
#: Detached actors, one set per namespace.
STATE_ACTOR = "raypipe:state"
DISPATCHER_ACTOR = "raypipe:dispatcher"
STREAMS_ACTOR = "raypipe:streams"
TELEMETRY_ACTOR = "raypipe:telemetry"
#: Owns the values put by reference (``ctx.put``); started on an app's first put.
OBJECTS_ACTOR = "raypipe:objects"
#: Most shards an app may have (``shards`` setting).
MAX_SHARDS = 64


def shard_actor(name: str, shard: int) -> str:
    """Shard ``shard``'s state or dispatcher actor. Shard 0's keeps the unsharded name: an
    app of one shard is the app it always was."""
    return name if shard == 0 else f"{name}:{shard}"


#: A step pool's actors: `raypipe:pool:<step>:<id>`, in the app's namespace.
POOL_ACTOR_PREFIX = "raypipe:pool:"
#: The Serve application (and the deployment inside it) serving an app's HTTP steps.
SERVE_APP_PREFIX = "raypipe-"
INGRESS_DEPLOYMENT = "RaypipeIngress"

DEFAULT_PORT = 3111
DEFAULT_HOST = "127.0.0.1"
DEFAULT_APP_NAME = "raypipe-app"

#: Files discovered in an app directory (Motia's Python SDK used ``.step.py`` until 2026).
STEP_SUFFIXES = ("_step.py", ".step.py")
STREAM_SUFFIXES = ("_stream.py", ".stream.py")
#: The other languages of a Motia app: their steps are listed as not run, their streams are
#: known by name (``*.step.ts``, ``*.stream.ts``, ...).
FOREIGN_SUFFIXES = (".ts", ".tsx", ".js", ".mjs", ".cjs")
#: The app's environment file, loaded without overriding the environment.
ENV_FILE = ".env"
#: Folders never searched for steps.
SKIPPED_DIRS = frozenset(
    {"__pycache__", "node_modules", "venv", ".venv", "env", "site-packages", "build", "dist"}
)

#: Synthetic package under which step modules are imported: ``raypipe_app.<app>.<folders>.<file>``
#: (a package per folder, so relative imports work; one name per file, stable across
#: processes so that every worker imports a file under the same name).
STEP_MODULE_PACKAGE = "raypipe_app"
#: The module name Motia apps import; raypipe answers it when no real ``motia`` is installed.
MOTIA_MODULE = "motia"

TRACE_HEADER = "x-trace-id"


#: Stream names: URL segments (SSE) and part of storage keys.
STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")

#: Key spaces of a state backend: the app's state, and its stream items (group
#: ``<stream>:<group>``), which the streams actor keeps with the same backend.
STATE_SPACE = "state"
STREAMS_SPACE = "streams"


#: Redis keys of a key space: a hash per group, and the set of group names.
def state_group_key(app_name: str, group: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}:{group}"


def state_field_key(app_name: str, group: str, item: str, field: str,
                    space: str = STATE_SPACE) -> str:
    """A hash holding one top-level dict field of an item, an entry per key, so that a write
    to ``field.<key>`` rewrites that entry, not the item. The group and item ids are written
    with their lengths, so no two (group, item, field) triples share a key whatever their
    ids hold (a separator alone let ``a\x1fb``/``c`` and ``a``/``b\x1fc`` meet)."""
    return f"{state_fields_prefix(app_name, space)}{len(group)}:{group}:{len(item)}:{item}:{field}"


def state_fields_prefix(app_name: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}-fields:"


#: The layout of an app's field keys in Redis (:func:`state_field_key`), recorded per key
#: space; a key space without the record is read in the old layout and moved to this one.
STATE_LAYOUT = "2"


def state_layout_key(app_name: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}-layout"


def legacy_state_field_key(app_name: str, group: str, item: str, field: str,
                           space: str = STATE_SPACE) -> str:
    """The field keys of layout 1 (before :data:`STATE_LAYOUT` 2), for their migration."""
    return f"{state_fields_prefix(app_name, space)}{group}\x1f{item}\x1f{field}"


def state_groups_key(app_name: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}-groups"


def stream_group(stream: str, group: str) -> str:
    """A stream group's name in the streams key space (stream names hold no ``:``)."""
    return f"{stream}:{group}"


#: An effect's record (its first result), kept while the delivery that owns it can run.
def effect_key(app_name: str, effect: str) -> str:
    return f"raypipe:{app_name}:effect:{effect}"


#: Per delivery: the set of its effects' record keys, dropped with them when it settles.
def owned_effects_key(app_name: str, owner: str) -> str:
    return f"raypipe:{app_name}:owned:{owner}"


#: Per delivery: the messages and deliveries it caused, so a recovered run causes none twice.
def caused_key(app_name: str, owner: str) -> str:
    return f"raypipe:{app_name}:caused:{owner}"


def _shard_suffix(shard: int) -> str:
    return "" if shard == 0 else f":{shard}"


#: Counts a dispatcher shard's lives; orders deliveries accepted across its restarts.
def epoch_key(app_name: str, shard: int = 0) -> str:
    return f"raypipe:{app_name}:epoch{_shard_suffix(shard)}"


#: A dispatcher shard's journal in Redis: deliveries not yet settled, and dead letters.
def pending_deliveries_key(app_name: str, shard: int = 0) -> str:
    return f"raypipe:{app_name}:deliveries{_shard_suffix(shard)}"


def dead_letters_key(app_name: str, shard: int = 0) -> str:
    return f"raypipe:{app_name}:dead-letters{_shard_suffix(shard)}"


#: Which dispatcher shard runs the app's cron schedules, and until when (a lease).
def cron_lease_key(app_name: str) -> str:
    return f"raypipe:{app_name}:cron-lease"


#: The last tick each cron step fired (epoch seconds), to catch up one missed after a restart.
def cron_ticks_key(app_name: str) -> str:
    return f"raypipe:{app_name}:cron-ticks"


def namespace_for(app_name: str) -> str:
    return NAMESPACE_PREFIX + app_name


def serve_app_name(app_name: str) -> str:
    return SERVE_APP_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "-", app_name)

#: Where a deploy records the app's current spec (Ray's GCS key-value store), so that an actor
#: Ray restarts after a crash runs the version deployed last, not the one it was created with.
SPEC_KEY = "raypipe:spec:{namespace}"
#: Where the dispatcher keeps its tally of outcomes (the GCS key-value store), so that
#: ``raypipe status`` counts on after a dispatcher restart.
TALLY_KEY = "raypipe:tally:{namespace}"
#: Shard ``i``'s tally, past shard 0 (whose key is :data:`TALLY_KEY`).
SHARD_TALLY_KEY = "raypipe:tally:{namespace}:{shard}"
#: The HTTP health route (public), as Serve's replica health check and deploys read it.
HEALTH_PATH = "/_raypipe/health"
