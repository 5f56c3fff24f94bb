"""Loading an app: its files found (:mod:`raypipe.app_files`) and imported
(:mod:`raypipe.app_modules`), each step's config checked, every problem reported at once.
Before the files, the app's ``.env`` is loaded (never overriding the environment) and, where
no ``motia`` package is installed, ``import motia`` is answered by :mod:`raypipe.motia`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import dotenv

from raypipe import constants
from raypipe import triggers as t
from raypipe.app import App
from raypipe.app_files import discover, discover_foreign, foreign_streams
from raypipe.app_modules import app_package, ensure_package, import_file
from raypipe.errors import AppLoadError, StepLoadError
from raypipe.settings import Settings, load_settings
from raypipe.step_configs import ConfigFieldError, check_config
from raypipe.steps import Step
from raypipe.streams.config import StreamConfig
from raypipe.streams.handle import Stream

__all__ = ["discover", "discover_foreign", "install_motia", "load_app", "load_app_cached",
           "load_env"]

log = logging.getLogger("raypipe.loader")


def _load_step(package: str, root: Path, path: Path, settings: Settings) -> Step:
    rel = str(path.relative_to(root))
    module = import_file(package, root, path, rel)
    raw: Any = getattr(module, "config", None)
    if raw is None:
        # Motia 1.x: the file's step(...) definition holds the config and the handler.
        raw = next((v for v in vars(module).values()
                    if type(v).__name__ == "StepDefinition"), None)
    raw_definition = raw
    if hasattr(raw, "handler") and hasattr(raw, "config"):
        raw = raw.config
    if raw is None:
        raise StepLoadError(rel, "config", "a step file must define `config`")
    try:
        config = check_config(raw)
    except ConfigFieldError as exc:
        raise StepLoadError(rel, f"config.{exc.field}", exc.message) from exc
    except (TypeError, ValueError) as exc:
        raise StepLoadError(rel, "config", str(exc)) from exc
    handler = getattr(module, "handler", None)
    if handler is None:
        # Motia 1.x's step(config, handler) / step(config).handle(handler)
        handler = getattr(raw_definition, "handler", None)
    if handler is None and not config.is_noop:
        raise StepLoadError(rel, "handler", f"step {config.name!r} has triggers but no `handler`")
    if handler is not None and not callable(handler):
        raise StepLoadError(rel, "handler", "must be a function or a class")
    if inspect.isclass(handler) and not any("__call__" in vars(k)
                                            for k in handler.__mro__[:-1]):
        raise StepLoadError(rel, "handler", "a class handler needs a __call__ method")
    if config.ray.batch is not None and not inspect.isclass(handler):
        raise StepLoadError(rel, "config.ray.batch", "batches go to a class handler whose "
                            "__call__(inputs, ctxs) returns one outcome per input")
    if config.ray.batch is not None and any(
            not isinstance(tr, t.QueueTrigger) for tr in config.triggers):
        raise StepLoadError(rel, "config.ray.batch", "only queue steps take batches")
    return Step(config=config, handler=handler, file=rel, module=module.__name__,
                lenient=not settings.strict and motia_shaped(raw_definition, module))


_IMPORTS_MOTIA = re.compile(r"^\s*(from\s+motia[\s.]|import\s+motia\b)", re.MULTILINE)


def motia_shaped(config: Any, module: ModuleType) -> bool:
    """A step written for Motia: a dict config, a ``step(...)`` definition, or a file that
    imports ``motia``."""
    if isinstance(config, Mapping) or hasattr(config, "handler"):
        return True
    try:
        source = Path(module.__file__ or "").read_text(errors="replace")
    except OSError:
        return False
    return _IMPORTS_MOTIA.search(source) is not None


def _in_code_streams(module: ModuleType) -> list[StreamConfig]:
    """Streams a step file declares in code (``todos = Stream("todo")``)."""
    return [v.config for v in vars(module).values() if isinstance(v, Stream)]


def _load_stream(package: str, root: Path, path: Path) -> StreamConfig:
    rel = str(path.relative_to(root))
    module = import_file(package, root, path, rel)
    raw = getattr(module, "config", None)
    if isinstance(raw, dict):
        # Motia's dict configs spell the access check canAccess.
        raw = StreamConfig(name=raw.get("name", ""), schema=raw.get("schema"),
                           description=raw.get("description", ""),
                           can_access=raw.get("canAccess", raw.get("can_access")))
    if not isinstance(raw, StreamConfig):
        raise StepLoadError(rel, "config", "a stream file must define `config = StreamConfig(...)`")
    if not raw.name:
        raise StepLoadError(rel, "config.name", "every stream needs a name")
    if not constants.STREAM_NAME.fullmatch(raw.name):
        # The name is a URL segment (SSE) and part of storage keys.
        raise StepLoadError(rel, "config.name", f"stream name {raw.name!r} may use only "
                            "letters, digits, '_', '-' and '.'")
    return raw


def _check_unique(steps: list[Step], errors: list[StepLoadError]) -> dict[str, Step]:
    by_name: dict[str, Step] = {}
    routes: dict[tuple[str, str], Step] = {}
    for step in steps:
        if step.name in by_name:
            errors.append(StepLoadError(
                step.file, "config.name",
                f"duplicate step name {step.name!r}, also used in {by_name[step.name].file}"))
            continue
        by_name[step.name] = step
        for i, tr in enumerate(step.config.triggers):
            if isinstance(tr, t.HttpTrigger):
                # {id} and {name} in the same position are the same route.
                key = (tr.method, re.sub(r"\{[^}]*\}", "{}", tr.path))
                if key in routes:
                    other = routes[key]
                    errors.append(StepLoadError(
                        step.file, f"config.triggers[{i}]",
                        f"{tr.method} {tr.path} is also served by step {other.name!r} "
                        f"({other.file})"))
                else:
                    routes[key] = step
    return by_name



def load_app(root: str | Path, settings: Settings | None = None, version: str = "") -> App:
    """Import every step and stream file under ``root`` (as ``version`` of the app: another
    version's files are other modules); report all problems at once."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise AppLoadError([StepLoadError(str(root), None, "is not a directory")])
    settings = settings or load_settings(root)
    load_env(root)
    install_motia()
    ensure_package()
    # So that step files can import helpers from the app's top folder.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    step_files, stream_files = discover(root)
    foreign_steps, foreign_stream_files = discover_foreign(root)
    package = app_package(root, version)
    errors: list[StepLoadError] = []
    steps: list[Step] = []
    in_code: dict[str, StreamConfig] = {}
    for path in step_files:
        try:
            steps.append(_load_step(package, root, path, settings))
        except StepLoadError as exc:
            errors.append(exc)
            continue
    # Streams declared in code: in a step file, or in a module of the app's it imports.
    for name, module in list(sys.modules.items()):
        if name == package or name.startswith(package + "."):
            for declared in _in_code_streams(module):
                in_code.setdefault(declared.name, declared)
    streams: dict[str, StreamConfig] = {}
    for path in stream_files:
        try:
            stream = _load_stream(package, root, path)
        except StepLoadError as exc:
            errors.append(exc)
            continue
        if stream.name in streams:
            errors.append(StepLoadError(str(path.relative_to(root)), "config.name",
                                        f"duplicate stream name {stream.name!r}"))
        streams[stream.name] = stream
    foreign, foreign_errors = foreign_streams(root, foreign_stream_files)
    errors.extend(foreign_errors)
    for name, declared in foreign.items():
        streams.setdefault(name, declared)  # a Python declaration wins
    for name, declared in in_code.items():
        if not constants.STREAM_NAME.fullmatch(name):
            errors.append(StepLoadError("steps", "Stream", f"stream name {name!r} may use only "
                                        "letters, digits, '_', '-' and '.'"))
        streams.setdefault(name, declared)  # a stream file's declaration wins
    by_name = _check_unique(steps, errors)
    if settings.authenticate:
        try:
            load_authenticate(settings.authenticate)
        except StepLoadError as exc:
            errors.append(exc)
    if errors:
        raise AppLoadError(errors)
    return App(root=root, settings=settings, steps=by_name, streams=streams, version=version,
               skipped=tuple(str(p.relative_to(root)) for p in foreign_steps))


#: Variables this process took from an app's ``.env`` (name -> value set), so that a new
#: version's ``.env`` (a reload) replaces them, while what the environment set stays.
_from_env_file: dict[str, str] = {}


def load_env(root: Path) -> None:
    """The app's ``.env`` into the environment, never over what the environment set itself:
    what ``raypipe dev`` and ``start`` (and every worker that loads the app) see. A value an
    earlier ``.env`` set is replaced by the new one (an edited ``.env``, reloaded)."""
    env = root / constants.ENV_FILE
    if not env.is_file():
        return
    for key, value in dotenv.dotenv_values(env).items():
        if value is None:
            continue
        if key not in os.environ or _from_env_file.get(key) == os.environ[key]:
            os.environ[key] = value
            _from_env_file[key] = value


def install_motia() -> None:
    """``import motia`` answered by :mod:`raypipe.motia`, unless a real ``motia`` package is
    installed (it is never shadowed)."""
    name = constants.MOTIA_MODULE
    if name in sys.modules:
        return
    # An installed distribution, not whatever ``find_spec`` sees from here: that looks in the
    # working directory first, so a ``motia.py`` there made the CLI import it while the
    # workers, started elsewhere, got raypipe's (every process of an app must agree).
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        log.info("a real %r package is installed: Motia SDK imports use it, not raypipe's", name)
        return
    from raypipe import motia

    sys.modules[name] = motia
    for sub in motia.SUBMODULES:  # ``from motia.types import ...`` and the like
        sys.modules[f"{name}.{sub}"] = motia


def load_authenticate(ref: str) -> Callable[..., Any]:
    """The ``authenticate = "module:function"`` setting's function (a module of the app);
    a StepLoadError naming the setting if it cannot be had."""
    module_name, _, name = ref.partition(":")
    where = "authenticate"
    if not module_name:
        raise StepLoadError("settings", where, f"{ref!r} must be 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise StepLoadError("settings", where, f"{ref!r}: the module cannot be imported "
                            f"({type(exc).__name__}: {exc})") from None
    fn = getattr(module, name or "authenticate", None)
    if not callable(fn):
        raise StepLoadError("settings", where, f"{ref!r}: {module_name} has no function "
                            f"{name or 'authenticate'!r}")
    return fn  # type: ignore[no-any-return]


_cache: dict[tuple[str, Settings, str], App] = {}
_cache_lock = threading.Lock()


def load_app_cached(root: str | Path, settings: Settings, version: str = "") -> App:
    """``load_app`` once per process and version: what Ray workers and actors call on every
    delivery."""
    key = (str(root), settings, version)
    app = _cache.get(key)
    if app is None:
        with _cache_lock:
            app = _cache.get(key)
            if app is None:
                app = _cache[key] = load_app(root, settings, version)
    return app
