"""The flow graph of a loaded app: which step feeds which (drawn by the modules beside this).

Pure: this module reads a loaded :class:`~raypipe.app.App` and never touches Ray, so
``raypipe flows`` works without a cluster.

Nodes are the app's steps, plus pseudo nodes so that nothing disappears from the picture:

- ``"state"`` (kind ``"source"``): feeds every step with a state trigger;
- ``"stream:<name>"`` (kind ``"source"``): feeds every step with a trigger on that stream;
- ``"topic:<name>"`` (kind ``"topic"``): a topic that is enqueued but that no step subscribes
  to, not even virtually.

An edge goes, for each topic, from every step that enqueues it (``enqueues`` or
``virtual_enqueues``) to every step that subscribes to it (queue triggers, ``"*"`` included, or
``virtual_subscribes``). It is virtual when either end is; one real enqueue-to-subscription
path makes it real.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from raypipe import trigger_kind
from raypipe.app import App
from raypipe.steps import Step

__all__ = ["FlowEdge", "FlowGraph", "FlowNode", "NodeKind", "build_graph", "trigger_label"]

#: A step's node has its first trigger's kind (a :class:`~raypipe.trigger_kind.TriggerKind`)
#: or ``"noop"``; pseudo nodes are ``"topic"`` or ``"source"``.
NodeKind = str
NOOP = "noop"
TOPIC = "topic"
SOURCE = "source"

TOPIC_PREFIX = "topic:"
WILDCARD = "*"


@dataclass(frozen=True)
class FlowNode:
    """A step, or a pseudo node (kind ``"source"`` or ``"topic"``)."""

    #: The node's id in the graph: a step's name, ``"state"``, ``"stream:<name>"`` or
    #: ``"topic:<name>"``.
    name: str
    kind: NodeKind
    #: One per trigger (``"POST /api/x"``, a topic, a cron expression, ``"state"``,
    #: ``"stream:<name>"``); a pseudo node's single label is what it stands for.
    labels: tuple[str, ...] = ()
    #: Path of the step file relative to the app; ``None`` for pseudo nodes.
    file: str | None = None
    flows: tuple[str, ...] = ()
    description: str = ""
    enqueues: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()
    virtual_enqueues: tuple[str, ...] = ()
    virtual_subscribes: tuple[str, ...] = ()
    #: The Ray options the step sets (``RayOptions.public()``).
    ray: tuple[tuple[str, Any], ...] = ()

    @property
    def is_step(self) -> bool:
        return self.kind not in (TOPIC, SOURCE)


@dataclass(frozen=True)
class FlowEdge:
    source: str
    target: str
    topic: str
    virtual: bool = False


@dataclass(frozen=True)
class FlowGraph:
    #: Step nodes sorted by name, then pseudo nodes sorted by name.
    nodes: tuple[FlowNode, ...]
    #: Sorted by (source, topic, target).
    edges: tuple[FlowEdge, ...]
    #: The flows drawn: every flow of the app, or only the one asked for.
    flows: tuple[str, ...]
    #: The flow the graph was filtered to, if any.
    flow: str | None = None
    app_name: str = ""

    @property
    def steps(self) -> tuple[FlowNode, ...]:
        return tuple(n for n in self.nodes if n.is_step)

    def node(self, name: str) -> FlowNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def outgoing(self, name: str) -> list[FlowEdge]:
        return [e for e in self.edges if e.source == name]

    def incoming(self, name: str) -> list[FlowEdge]:
        return [e for e in self.edges if e.target == name]

    @property
    def topics(self) -> list[str]:
        """Every topic the drawn steps enqueue or subscribe to, really or virtually
        (``"*"`` is a subscription to all of them, not a topic)."""
        found: set[str] = set()
        for n in self.steps:
            found.update(n.enqueues, n.subscribes, n.virtual_enqueues, n.virtual_subscribes)
        found.discard(WILDCARD)
        return sorted(found)


# --- building ---------------------------------------------------------------------------------

def trigger_label(trigger: trigger_kind.Trigger) -> str:
    """How a trigger is shown: ``"POST /api/x"``, the topic, the cron expression,
    ``"state"`` / ``"state:<group>"``, ``"stream:<name>[/<group>[/<item>]]"``."""
    return trigger_kind.kind_of(trigger).label(trigger)


def _step_kind(step: Step) -> NodeKind:
    """The kind of the step's first trigger (a step with several kinds of trigger shows them
    all in its labels)."""
    if not step.config.triggers:
        return NOOP
    return str(step.config.triggers[0].type)


def _step_node(step: Step) -> FlowNode:
    c = step.config
    return FlowNode(
        name=step.name,
        kind=_step_kind(step),
        labels=tuple(trigger_label(tr) for tr in c.triggers),
        file=step.file,
        flows=tuple(c.flows),
        description=c.description,
        enqueues=tuple(c.enqueues),
        subscribes=tuple(step.subscribes),
        virtual_enqueues=tuple(c.virtual_enqueues),
        virtual_subscribes=tuple(c.virtual_subscribes),
        ray=tuple(c.ray.public().items()),
    )


def _pseudo_id(base: str, taken: Iterable[str]) -> str:
    """``base``, unless a step already has that name (step names are free text)."""
    taken = set(taken)
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}#{i}"
    return name


def _full_graph(app: App) -> FlowGraph:
    steps = sorted(app.steps.values(), key=lambda s: s.name)
    step_names = {s.name for s in steps}
    nodes: dict[str, FlowNode] = {s.name: _step_node(s) for s in steps}
    # (source, target, topic) -> virtual; a real path wins over a virtual one.
    edges: dict[tuple[str, str, str], bool] = {}

    def add(source: str, target: str, topic: str, virtual: bool) -> None:
        key = (source, target, topic)
        edges[key] = edges.get(key, True) and virtual

    def virtual_subscribers(topic: str) -> list[Step]:
        return [s for s in steps
                if topic in s.config.virtual_subscribes
                or WILDCARD in s.config.virtual_subscribes]

    topic_nodes: dict[str, str] = {}
    for step in steps:
        publishes = [(tp, False) for tp in step.config.enqueues]
        publishes += [(tp, True) for tp in step.config.virtual_enqueues]
        for topic, virtual_pub in publishes:
            real = app.subscribers(topic)
            virtual = virtual_subscribers(topic)
            for sub in real:
                add(step.name, sub.name, topic, virtual_pub)
            for sub in virtual:
                add(step.name, sub.name, topic, True)
            if not real and not virtual:
                if topic not in topic_nodes:
                    node_id = _pseudo_id(TOPIC_PREFIX + topic, step_names)
                    topic_nodes[topic] = node_id
                    nodes[node_id] = FlowNode(name=node_id, kind=TOPIC, labels=(topic,))
                add(step.name, topic_nodes[topic], topic, virtual_pub)

    sources: dict[str, str] = {}
    for step in steps:
        for tr in step.config.triggers:
            src = trigger_kind.kind_of(tr).source(tr)
            if src is None:
                continue
            if src.key not in sources:
                sources[src.key] = _pseudo_id(src.key, step_names)
                nodes[sources[src.key]] = FlowNode(name=sources[src.key], kind=SOURCE,
                                                   labels=(src.label,))
            add(sources[src.key], step.name, src.topic, True)

    return FlowGraph(
        nodes=_sorted_nodes(nodes.values()),
        edges=_sorted_edges(FlowEdge(s, d, tp, v) for (s, d, tp), v in edges.items()),
        flows=tuple(app.flows),
        app_name=app.name,
    )


def _sorted_nodes(nodes: Iterable[FlowNode]) -> tuple[FlowNode, ...]:
    return tuple(sorted(nodes, key=lambda n: (not n.is_step, n.name)))


def _sorted_edges(edges: Iterable[FlowEdge]) -> tuple[FlowEdge, ...]:
    return tuple(sorted(edges, key=lambda e: (e.source, e.topic, e.target, e.virtual)))


def build_graph(app: App, flow: str | None = None) -> FlowGraph:
    """The app's flow graph; with ``flow``, only the steps in that flow, the edges among them
    and the pseudo nodes they hang from or feed. An unknown flow raises ValueError."""
    graph = _full_graph(app)
    if flow is None:
        return graph
    if flow not in graph.flows:
        known = ", ".join(repr(f) for f in graph.flows) or "(none)"
        raise ValueError(f"unknown flow {flow!r}; known flows: {known}")
    kept = {n.name for n in graph.steps if flow in n.flows}
    pseudo = {n.name for n in graph.nodes if not n.is_step}
    edges = [
        e for e in graph.edges
        if (e.source in kept or e.source in pseudo) and (e.target in kept or e.target in pseudo)
    ]
    used = kept | {e.source for e in edges} | {e.target for e in edges}
    return FlowGraph(
        nodes=tuple(n for n in graph.nodes if n.name in used),
        edges=tuple(edges),
        flows=(flow,),
        flow=flow,
        app_name=graph.app_name,
    )
