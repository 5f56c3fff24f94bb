"""The flow graph as text (``raypipe flows``)."""

from __future__ import annotations

from raypipe.flows.graph import TOPIC, FlowEdge, FlowGraph, FlowNode

__all__ = ["to_text"]


NO_FLOW = "(no flow)"


def _edge_line(graph: FlowGraph, edge: FlowEdge) -> str:
    target = edge.target
    notes = []
    if graph.node(target).kind == TOPIC:
        notes.append("no subscriber")
    if edge.virtual:
        notes.append("virtual")
    suffix = f"  ({', '.join(notes)})" if notes else ""
    return f"    -> {edge.topic} -> {target}{suffix}"


def to_text(graph: FlowGraph) -> str:
    """One section per flow: each step with its kind and triggers, then one
    ``-> topic -> target`` line per edge leaving it. Steps in no flow come last."""
    sections: list[tuple[str, list[FlowNode]]] = [
        (f, [n for n in graph.steps if f in n.flows]) for f in graph.flows
    ]
    loose = [n for n in graph.steps if not n.flows]
    if loose and graph.flow is None:
        sections.append((NO_FLOW, loose))
    lines: list[str] = []
    if graph.app_name:
        lines.append(f"app {graph.app_name}")
    if not sections:
        lines.append("(no steps)")
    for title, members in sections:
        if lines:
            lines.append("")
        lines.append(f"flow {title}" if title != NO_FLOW else title)
        for node in members:
            triggers = ", ".join(node.labels)
            ray = " ".join(f"{k}={v}" for k, v in node.ray)
            lines.append(f"  {node.name} [{node.kind}]" + (f" {triggers}" if triggers else "")
                         + (f"  (ray: {ray})" if ray else ""))
            lines.extend(_edge_line(graph, e) for e in graph.outgoing(node.name))
    return "\n".join(lines) + "\n"


