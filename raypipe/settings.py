"""App settings: ``[tool.raypipe]`` in the app's pyproject.toml, then ``RAYPIPE_*``, then flags."""

from __future__ import annotations

import enum
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from raypipe import constants
from raypipe.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["IngressMode", "LogFormat", "Settings", "load_settings", "redact_url"]


class LogFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


class IngressMode(str, enum.Enum):
    """Which of Serve's HTTP data paths a Ray that raypipe starts uses (docs/security.md)."""

    #: Serve's proxy actor: it listens only where the app's ``host`` says. The default.
    PROXY = "proxy"
    #: Serve's throughput-optimised HAProxy path: several times the requests per second, but
    #: Ray 2.60 binds its replicas, stats page and metrics exporter on every interface and
    #: gives its admin socket mode 666, so only for a host no other user shares.
    HAPROXY = "haproxy"


class Settings(BaseModel):
    """Everything an app can configure. Field names are the pyproject keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = constants.DEFAULT_APP_NAME
    #: ``memory`` (the embedded default), a ``redis://`` URL, or ``redis+cluster://`` and a
    #: node of a Redis Cluster.
    state: str = "memory"
    host: str = constants.DEFAULT_HOST
    port: int = Field(default=constants.DEFAULT_PORT, ge=1, le=65535)
    #: CPUs a step task reserves; below 1 lets I/O-bound handlers share a core.
    task_num_cpus: float = Field(default=0.25, gt=0)
    #: Where the app's routes start. Serve has one HTTP port per cluster, so apps sharing a
    #: cluster need distinct prefixes.
    route_prefix: str = "/"
    #: Replicas of the HTTP ingress deployment.
    ingress_replicas: int = Field(default=1, ge=1)
    #: ``"module:function"`` (a module of the app): ``authenticate(request)`` returns what
    #: streams' ``can_access(subscription, auth)`` receive; raising refuses the connection.
    authenticate: str | None = None
    #: CPUs each ingress replica reserves. Serve's default of 1 would take half of a 2-core
    #: machine from the step tasks; a replica mostly waits on actors.
    ingress_num_cpus: float = Field(default=0.0, ge=0)
    #: Dispatcher, state and streams actors the app's deliveries, items and stream groups
    #: are spread over (docs/scaling.md); a running app changes it only with a restart of
    #: its actors.
    shards: int = Field(default=1, ge=1, le=constants.MAX_SHARDS)
    #: Seconds an attempt may run before a warning is logged (it is not stopped: that is
    #: ``visibility_timeout``'s job).
    stuck_after_seconds: float = Field(default=300.0, gt=0)
    #: Requests one ingress replica takes at once (Serve's ``max_ongoing_requests``).
    ingress_max_ongoing_requests: int = Field(default=1000, ge=1)
    #: Serve's ``autoscaling_config`` for the ingress (``min_replicas``, ``max_replicas``,
    #: ``target_ongoing_requests``, ...); set, it replaces ``ingress_replicas``.
    ingress_autoscaling: tuple[tuple[str, Any], ...] | None = None
    #: Step logs as ``text`` (the default) or ``json`` lines.
    log_format: LogFormat = LogFormat.TEXT
    #: A file step logs are appended to (each process's), instead of stderr.
    log_file: str | None = None
    #: Motia-shaped steps (dict configs, ``from motia import ...``) fail fast as raypipe's own
    #: do: a response that does not match its schema is a 500 and an enqueue of an
    #: undeclared topic raises. Off, they only log a warning, as Motia did.
    strict: bool = False

    # --- who may reach what (docs/security.md) ----------------------------------------------
    #: The admin surface's bearer token (``/_raypipe/``: workbench, state, logs, traces, dead
    #: letters). Without one it is served only by ``raypipe dev`` on a loopback host.
    admin_token: SecretStr | None = None
    #: A file holding the admin token (read when the settings load), instead of the value.
    admin_token_file: str | None = None
    #: ``Host`` values the admin surface and stream subscriptions accept; empty: the loopback
    #: names while the admin surface is open without a token, any with one.
    allowed_hosts: tuple[str, ...] = ()
    #: Browser origins (``scheme://host[:port]``) allowed to subscribe to streams and call the
    #: admin surface; the app's own origin always is.
    allowed_origins: tuple[str, ...] = ()
    #: Seconds a value put by reference outside a delivery (an HTTP step's ``ctx.put``) is
    #: held at least: no delivery holds it until its reference is enqueued or stored.
    ref_grace_seconds: float = Field(default=60.0, ge=0)
    #: Where values put by reference are also written, so that they outlive the cluster: a
    #: folder or an fsspec URL (``s3://bucket/prefix``). Unset, with Redis state, a folder of
    #: this user's on the node (see :mod:`raypipe.blobs`); with memory state, none.
    blob_store: str | None = None
    #: Signs what a blob store holds (needed for any store but a local folder).
    blob_key: SecretStr | None = None
    #: Largest request body, in bytes (413 past it, before it is parsed).
    max_body_bytes: int = Field(default=1 << 20, ge=1)
    #: Deepest nesting of a JSON body or stored value (422 / an error past it).
    max_json_depth: int = Field(default=64, ge=1)
    #: Seconds a request may take to send its body (408 past it).
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Subscriptions one WebSocket connection may hold at once.
    ws_max_subscriptions: int = Field(default=1000, ge=1)
    #: Messages waiting to be sent to one WebSocket connection before it is closed as too slow.
    ws_send_buffer: int = Field(default=1000, ge=1)
    #: Seconds an HTTP request waits for the state backend or the dispatcher before it is
    #: answered 503 (a Redis outage answers, it does not hang the ingress).
    backend_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Seconds Serve's proxy keeps an idle client connection open (Serve's
    #: ``keep_alive_timeout_s``; the first Serve start of a cluster sets it).
    ingress_idle_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Seconds a connection to Serve's proxy has to send a request's head, from when it opens
    #: or its last response ends (408 and closed past it; a Ray raypipe starts).
    ingress_header_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Seconds a request may take end to end in Serve's proxy before it answers 408 (Serve's
    #: ``request_timeout_s``); unset, a request may run as long as its handler does.
    ingress_request_timeout_seconds: float | None = Field(default=None, gt=0)
    #: Serve's data path in a Ray that raypipe starts (:class:`IngressMode`).
    ingress: IngressMode = IngressMode.PROXY
    #: Ship the app's ``.env`` with its code into the cluster's store. Off: a shipped app gets
    #: its environment from the cluster (``runtime_env``), and secrets stay off the GCS.
    ship_env: bool = False
    #: Set by ``raypipe dev``: the app is served from this machine (its admin surface may then
    #: be open without a token, on a loopback host). Never read from a file or the
    #: environment: only the command sets it.
    dev: bool = False

    @field_validator("ingress_autoscaling", mode="before")
    @classmethod
    def _autoscaling(cls, v: Any) -> Any:
        # Kept as pairs: settings are hashable (every process caches the app by them).
        if isinstance(v, str):
            import json

            v = json.loads(v)
        if isinstance(v, Mapping):
            return tuple(sorted(v.items()))
        return v

    @property
    def autoscaling_config(self) -> dict[str, Any] | None:
        return dict(self.ingress_autoscaling) if self.ingress_autoscaling else None

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, str):  # RAYPIPE_ALLOWED_HOSTS=a,b
            return tuple(x.strip() for x in v.split(",") if x.strip())
        return v

    @property
    def admin_secret(self) -> str | None:
        return self.admin_token.get_secret_value() if self.admin_token else None

    @field_validator("state")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v != "memory" and not v.startswith(("redis://", "rediss://", "unix://",
                                                "redis+cluster://", "rediss+cluster://")):
            raise ValueError("must be 'memory', a redis:// URL or a redis+cluster:// URL (a "
                             "node of a Redis Cluster)")
        return v

    @field_validator("route_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v if v == "/" else v.rstrip("/")

    @property
    def namespace(self) -> str:
        return constants.namespace_for(self.name)


_ENV_PREFIX = "RAYPIPE_"
#: Settings a command sets, never a file or a variable (``dev`` opens the admin surface).
_COMMAND_ONLY = frozenset({"dev"})


def _from_pyproject(app_dir: Path) -> dict[str, Any]:
    path = app_dir / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    section = data.get("tool", {}).get("raypipe", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.raypipe] must be a table")
    out = {k.replace("-", "_"): v for k, v in section.items()}
    if _COMMAND_ONLY & out.keys():
        raise ConfigError(f"{path}: [tool.raypipe] cannot set "
                          f"{', '.join(sorted(_COMMAND_ONLY & out.keys()))}: `raypipe dev` "
                          "sets it (it opens the admin surface without a token)")
    return out


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in Settings.model_fields:
        key = _ENV_PREFIX + field.upper()
        if key in environ and field in _COMMAND_ONLY:
            raise ConfigError(f"{key} is not a setting: `raypipe dev` sets {field} (it opens "
                              "the admin surface without a token); unset it")
        if key in environ:
            out[field] = environ[key]
    # The documented spelling for the backend URL.
    if "RAYPIPE_STATE_URL" in environ:
        out["state"] = environ["RAYPIPE_STATE_URL"]
    return out


def load_settings(
    app_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the three sources, later ones winning; ``None`` overrides are ignored."""
    app_dir = Path(app_dir)
    merged: dict[str, Any] = {"name": app_dir.resolve().name or constants.DEFAULT_APP_NAME}
    merged.update(_from_pyproject(app_dir))
    merged.update(_from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    token_file = merged.get("admin_token_file")
    if token_file and not merged.get("admin_token"):
        path = (app_dir / str(token_file)).expanduser()
        try:
            merged["admin_token"] = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"admin_token_file {str(path)!r} cannot be read: "
                              f"{exc.strerror}") from None
    try:
        return Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings for {app_dir}: {problems}") from exc


def redact_url(url: str) -> str:
    """A state URL without its password, for display."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
