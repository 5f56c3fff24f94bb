"""The flow graph as JSON (the workbench draws it)."""

from __future__ import annotations

from typing import Any

from raypipe.flows.graph import FlowGraph

__all__ = ["to_json"]


def to_json(graph: FlowGraph) -> dict[str, Any]:
    """The graph as plain JSON values: flows, steps, edges, topics, and the pseudo nodes the
    edges name (``"state"``, ``"stream:<name>"``, ``"topic:<name>"``)."""
    return {
        "app": graph.app_name,
        "flow": graph.flow,
        "flows": list(graph.flows),
        "steps": [
            {
                "name": n.name,
                "file": n.file,
                "kind": n.kind,
                "triggers": list(n.labels),
                "flows": list(n.flows),
                "description": n.description,
                "enqueues": list(n.enqueues),
                "subscribes": list(n.subscribes),
                "virtual_enqueues": list(n.virtual_enqueues),
                "virtual_subscribes": list(n.virtual_subscribes),
                "ray": dict(n.ray),
            }
            for n in graph.steps
        ],
        "pseudo_nodes": [
            {"name": n.name, "kind": n.kind, "label": n.labels[0] if n.labels else n.name}
            for n in graph.nodes if not n.is_step
        ],
        "edges": [
            {"source": e.source, "target": e.target, "topic": e.topic, "virtual": e.virtual}
            for e in graph.edges
        ],
        "topics": graph.topics,
    }
