"""The flow graph of a loaded app: which step feeds which, drawn as text, Mermaid or JSON.
Pure: it reads a loaded :class:`~raypipe.app.App` and never touches Ray, so ``raypipe flows``
works without a cluster."""

from raypipe.flows.graph import (
    FlowEdge,
    FlowGraph,
    FlowNode,
    NodeKind,
    build_graph,
    trigger_label,
)
from raypipe.flows.json_form import to_json
from raypipe.flows.mermaid import mermaid_ids, to_mermaid
from raypipe.flows.text import to_text

__all__ = [
    "FlowEdge",
    "FlowGraph",
    "FlowNode",
    "NodeKind",
    "build_graph",
    "mermaid_ids",
    "to_json",
    "to_mermaid",
    "to_text",
    "trigger_label",
]
