"""Importing an app's files as modules: each once per process under a stable name of its
app's version (``raypipe_app.<folder>_<hash>.<folders>.<file>``), so every Ray worker that runs
a step imports the same file under the same name, two versions live side by side, and every
folder is a package (its ``__init__.py`` run as Python would run it) for relative imports."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from raypipe import constants
from raypipe.errors import StepLoadError

__all__ = ["app_package", "ensure_package", "import_file"]


def _identifier(part: str) -> str:
    safe = re.sub(r"\W", "_", part)
    return f"_{safe}" if safe[:1].isdigit() else safe


def app_package(root: Path, version: str) -> str:
    """``raypipe_app.<folder>_<hash of its path and version>``: apps in one process never
    share modules, and a new version of an app is imported afresh beside the old one."""
    digest = hashlib.blake2b(f"{root}|{version}".encode(), digest_size=4).hexdigest()
    return f"{constants.STEP_MODULE_PACKAGE}.{_identifier(root.name)}_{digest}"


def _module_name(package: str, root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    stem = rel.name[: -len(".py")]
    return ".".join([package, *map(_identifier, rel.parts[:-1]), _identifier(stem)])


def _package(name: str, folder: Path) -> None:
    """The package ``name`` for ``folder``: its ``__init__.py`` run, or an empty one."""
    cached = sys.modules.get(name)
    if cached is not None and list(getattr(cached, "__path__", ())) == [str(folder)]:
        return
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return
    module = ModuleType(name)
    module.__path__ = [str(folder)]
    module.__package__ = name
    sys.modules[name] = module


def _packages(package: str, root: Path, path: Path, rel: str) -> None:
    """Every package above a step file's module, the app's own first."""
    _package(package, root)
    name, folder = package, root
    for part in path.relative_to(root).parts[:-1]:
        name, folder = f"{name}.{_identifier(part)}", folder / part
        try:
            _package(name, folder)
        except Exception as exc:
            raise StepLoadError(rel, None, f"its folder's __init__.py failed: "
                                f"{type(exc).__name__}: {exc}") from exc


def import_file(package: str, root: Path, path: Path, rel: str) -> ModuleType:
    name = _module_name(package, root, path)
    cached = sys.modules.get(name)
    if cached is not None and getattr(cached, "__file__", None) == str(path):
        return cached
    _packages(package, root, path, rel)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise StepLoadError(rel, None, "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so that pickling and dataclasses find the module by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = f" (line {frames[-1].lineno})" if frames else ""
        raise StepLoadError(rel, None, f"import failed{line}: {type(exc).__name__}: {exc}") from exc
    return module


def ensure_package() -> None:
    # A parent package makes ``raypipe_app.x`` a valid dotted name for importlib and pickle.
    if constants.STEP_MODULE_PACKAGE not in sys.modules:
        pkg = ModuleType(constants.STEP_MODULE_PACKAGE)
        pkg.__path__ = []
        sys.modules[constants.STEP_MODULE_PACKAGE] = pkg


