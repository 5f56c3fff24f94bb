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
    """Shard ``shard``'s state, streams or dispatcher actor. Shard 0's keeps the unsharded
    name: an app of one shard is the app it always was."""
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


#: Redis keys. Every key a transaction or script touches shares a hash tag (the part in
#: braces), so that a Redis Cluster holds it in one slot: a key space's shard (state shard
#: ``i``'s items, their field hashes, group names and effect records; the streams' items)
#: is one tag, a dispatcher shard's journal another, so K shards spread over K slots.
def shard_prefix(app_name: str, space: str, shard: int) -> str:
    """The prefix of every key of ``space``'s shard ``shard``; the app's name is written
    with its length, so no two apps' prefixes meet."""
    return f"raypipe:{{{len(app_name)}:{app_name}:{space}:{shard}}}:"


#: The layout of an app's keys (this module's), recorded per key space with the number of
#: shards it is laid out for: ``3:<shards>``. A key space in an older layout, or laid out
#: for another number of shards, is moved when its backends first start.
STATE_LAYOUT = "3"
JOURNAL_SPACE = "journal"


def layout_key(app_name: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}-layout"


#: Held by the process moving a key space to the current layout.
def layout_lock_key(app_name: str, space: str = STATE_SPACE) -> str:
    return f"raypipe:{app_name}:{space}-layout-lock"


#: A state shard's keys: a hash per group (item id -> the item's head), the set of its group
#: names, and a hash per top-level dict field of an item (:mod:`raypipe.state.backends.
#: redis_items`), whose group and item ids are written with their lengths so that no two
#: (group, item, field) triples share a key whatever their ids hold.
def state_group_key(app_name: str, group: str, space: str = STATE_SPACE, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, space, shard)}g:{group}"


def state_field_key(app_name: str, group: str, item: str, field: str,
                    space: str = STATE_SPACE, shard: int = 0) -> str:
    return (f"{shard_prefix(app_name, space, shard)}f:"
            f"{len(group)}:{group}:{len(item)}:{item}:{field}")


def state_groups_key(app_name: str, space: str = STATE_SPACE, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, space, shard)}groups"


#: An effect's record (its first result), kept in the shard of the item it wrote while the
#: delivery that owns it can run; per owner, the set of its records' keys; and the set of
#: owners with records in the shard (what a sweep after a lost release reads).
def effect_key(app_name: str, effect: str, space: str = STATE_SPACE, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, space, shard)}e:{effect}"


def owned_effects_key(app_name: str, owner: str, space: str = STATE_SPACE,
                      shard: int = 0) -> str:
    return f"{shard_prefix(app_name, space, shard)}o:{owner}"


def effect_owners_key(app_name: str, space: str = STATE_SPACE, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, space, shard)}owners"


def stream_group(stream: str, group: str) -> str:
    """A stream group's name in the streams key space (stream names hold no ``:``)."""
    return f"{stream}:{group}"


#: A dispatcher shard's journal: deliveries not yet settled, dead letters, per delivery the
#: messages and deliveries it caused here (so a recovered run causes none twice), the count of
#: the shard's lives (ordering deliveries accepted across its restarts) and the last tick each
#: cron step fired while this shard held the lease (epoch seconds).
def pending_deliveries_key(app_name: str, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, JOURNAL_SPACE, shard)}deliveries"


def dead_letters_key(app_name: str, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, JOURNAL_SPACE, shard)}dead-letters"


def caused_key(app_name: str, owner: str, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, JOURNAL_SPACE, shard)}caused:{owner}"


def epoch_key(app_name: str, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, JOURNAL_SPACE, shard)}epoch"


def cron_ticks_key(app_name: str, shard: int = 0) -> str:
    return f"{shard_prefix(app_name, JOURNAL_SPACE, shard)}cron-ticks"


#: Which dispatcher shard runs the app's cron schedules, and until when (a lease).
def cron_lease_key(app_name: str) -> str:
    return f"raypipe:{app_name}:cron-lease"


_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    """``text`` as a SCAN pattern matching it literally."""
    return text.translate(_GLOB)


def app_key_patterns(app_name: str) -> list[str]:
    """SCAN patterns matching every key of the app: those under its shards' hash tags, and
    the untagged ones (layout markers, the cron lease; as before layout 3, this pattern also
    matches the untagged keys of an app named ``<app_name>:<more>``)."""
    name = glob_escape(app_name)
    return [f"raypipe:{name}:*", f"raypipe:{{{len(app_name)}:{name}:*"]


class V2Keys:
    """The keys of layout 2 (none tagged: one Redis, one slot-less key space), read only to
    move them to the current layout."""

    @staticmethod
    def group(app_name: str, group: str, space: str) -> str:
        return f"raypipe:{app_name}:{space}:{group}"

    @staticmethod
    def fields_prefix(app_name: str, space: str) -> str:
        return f"raypipe:{app_name}:{space}-fields:"

    @staticmethod
    def groups(app_name: str, space: str) -> str:
        return f"raypipe:{app_name}:{space}-groups"

    @staticmethod
    def effects_prefix(app_name: str) -> str:
        return f"raypipe:{app_name}:effect:"

    @staticmethod
    def owned_prefix(app_name: str) -> str:
        return f"raypipe:{app_name}:owned:"

    @staticmethod
    def caused_prefix(app_name: str) -> str:
        return f"raypipe:{app_name}:caused:"

    @staticmethod
    def journal(app_name: str, shard: int) -> dict[str, str]:
        """A dispatcher shard's journal keys of layout 2, by their current names' kind."""
        suffix = "" if shard == 0 else f":{shard}"
        return {"deliveries": f"raypipe:{app_name}:deliveries{suffix}",
                "dead-letters": f"raypipe:{app_name}:dead-letters{suffix}",
                "epoch": f"raypipe:{app_name}:epoch{suffix}"}

    @staticmethod
    def cron_ticks(app_name: str) -> str:
        return f"raypipe:{app_name}:cron-ticks"

    @staticmethod
    def left(app_name: str) -> str:
        """Set while effect records of layout 2 may remain (their owners had not settled
        when the key space was moved)."""
        return f"raypipe:{app_name}:v2-effects"


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
