"""The flow graph as a Mermaid flow chart."""

from __future__ import annotations

import re

from raypipe import trigger_kind
from raypipe.flows.graph import NOOP, SOURCE, TOPIC, FlowGraph

__all__ = ["mermaid_ids", "to_mermaid"]


_SHAPES: dict[str, tuple[str, str]] = {
    NOOP: ('(["', '"])'),  # stadium
    TOPIC: ('>"', '"]'),  # flag
    SOURCE: ('[("', '")]'),  # cylinder: where state and stream changes come from
}


def _shape(kind: str) -> tuple[str, str]:
    spec = trigger_kind.lookup(kind)
    return spec.shape if spec is not None else _SHAPES[kind]


#: Topic node names already start with ``topic:``.
_ID_PREFIX = {TOPIC: "", SOURCE: "src_"}
_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;", "`": "#96;", "\n": " "}


def _escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def mermaid_ids(graph: FlowGraph) -> dict[str, str]:
    """Node name -> Mermaid id (letters, digits, underscores; unique; never a keyword)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in graph.nodes:
        base = _ID_PREFIX.get(node.kind, "step_") + re.sub(r"[^A-Za-z0-9_]", "_", node.name)
        mid, i = base, 1
        while mid in used:
            i += 1
            mid = f"{base}_{i}"
        used.add(mid)
        ids[node.name] = mid
    return ids


def to_mermaid(graph: FlowGraph) -> str:
    """A Mermaid ``flowchart LR``: node shapes by kind, edges labelled by topic, virtual edges
    dashed."""
    ids = mermaid_ids(graph)
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _shape(node.kind)
        # A step shows its name over its triggers; a pseudo node shows what it stands for.
        parts = [node.name, *node.labels] if node.is_step else list(node.labels[:1] or [node.name])
        label = "<br/>".join(_escape(p) for p in parts)
        lines.append(f"    {ids[node.name]}{opening}{label}{closing}")
    for edge in graph.edges:
        arrow = "-.->" if edge.virtual else "-->"
        lines.append(f'    {ids[edge.source]} {arrow}|"{_escape(edge.topic)}"| {ids[edge.target]}')
    return "\n".join(lines) + "\n"


