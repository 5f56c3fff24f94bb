"""The layout holds: the delivery engine stands alone. Its modules, and every raypipe module
they import at module level, import nothing of the handler layer (``context``, ``calls``,
``logger``, ``execution``), streams, HTTP, the Ray shells or Ray itself; ``raypipe.testing``
builds on the same parts. Read from the source (importing ``raypipe.engine`` runs
``raypipe/__init__``, which brings everything)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "raypipe"
#: What the engine may not reach.
ABOVE_THE_ENGINE = ("raypipe.context", "raypipe.calls", "raypipe.logger", "raypipe.execution",
                    "raypipe.handlers", "raypipe.enqueue", "raypipe.state.api",
                    "raypipe.streams", "raypipe.http", "raypipe.runtime", "raypipe.testing",
                    "raypipe.motia", "ray.")


def _file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"),
                      PACKAGE.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Modules imported at module level (not in functions, not under ``TYPE_CHECKING``)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from raypipe import triggers` imports the submodule; the package itself
                # (raypipe/__init__, the public API) runs before any submodule of it
                # whatever imports it, so it is not the engine's own import.
                if node.module != "raypipe":
                    found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names
                             if node.module.startswith("raypipe")
                             and _file(f"{node.module}.{a.name}") is not None)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
    visit(ast.parse(path.read_text()).body)
    return found


def closure(start: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _file(module) if module.startswith("raypipe") else None
        if path is not None:
            todo.extend(m for m in _imports(path)
                        if m.startswith("raypipe") or m.split(".")[0] == "ray")
    return seen


def test_the_engine_imports_nothing_above_it() -> None:
    engine = [f"raypipe.engine.{p.stem}" for p in (PACKAGE / "engine").glob("*.py")
              if p.stem != "__init__"] + ["raypipe.engine"]
    reached = closure(engine)
    above = sorted(m for m in reached if m == "ray" or m.startswith(ABOVE_THE_ENGINE))
    assert not above, f"the engine reaches {above}"
    assert "raypipe.engine.delivery" in reached  # the walk itself works


def test_the_walk_sees_what_the_handler_layer_imports() -> None:
    # The same walk from the handler layer does reach the context: it can tell.
    assert "raypipe.context" in closure(["raypipe.execution"])
