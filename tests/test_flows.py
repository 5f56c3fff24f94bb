"""The flow graph (`raypipe flows`): edges, kinds, pseudo nodes, filters, renderings."""

from __future__ import annotations

import ast
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import raypipe.flows
from raypipe.flows import (
    FlowEdge,
    FlowGraph,
    build_graph,
    mermaid_ids,
    to_json,
    to_mermaid,
    to_text,
)
from raypipe.loader import load_app

# The parallel-workflow example as it was before its stream variant: a frozen topology, so that
# these exact assertions do not churn as the shipped example grows.
EXAMPLE = Path(__file__).resolve().parent / "apps" / "flows-example"
FLOW = "workflow-orchestration"


@pytest.fixture(autouse=True)
def _forget_step_modules() -> Iterator[None]:
    """Step modules are cached by their path inside the app; tmp apps must not share them."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("raypipe_app."):
            del sys.modules[name]


def edge_set(graph: FlowGraph) -> set[tuple[str, str, str, bool]]:
    return {(e.source, e.topic, e.target, e.virtual) for e in graph.edges}


def write_app(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / "steps" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


# --- a plausibility check of Mermaid output ---------------------------------------------------

_SHAPE_PAIRS = {
    '[/"': '"/]', '["': '"]', '{{"': '"}}', '{"': '"}', '(("': '"))', '(["': '"])',
    '>"': '"]', '[("': '")]',
}
_OPEN = "|".join(re.escape(o) for o in sorted(_SHAPE_PAIRS, key=len, reverse=True))
_NODE = re.compile(rf'^    ([A-Za-z0-9_]+)({_OPEN})([^"]*)("[\]\)\}}/]+)$')
_EDGE = re.compile(r'^    ([A-Za-z0-9_]+) (-->|-\.->)\|"([^"]*)"\| ([A-Za-z0-9_]+)$')
_KEYWORDS = {"end", "graph", "flowchart", "subgraph", "style", "class", "classDef", "click",
             "linkStyle", "direction"}


def check_mermaid(text: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Parse what to_mermaid writes; fail on anything a Mermaid parser could choke on.
    Returns {id: (shape opening, label)} and [(source, arrow, label, target)]."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(1 for ln in lines if ln.strip().startswith(("flowchart", "graph"))) == 1
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    for line in lines[1:]:
        if m := _NODE.match(line):
            node_id, opening, label, closing = m.groups()
            assert _SHAPE_PAIRS[opening] == closing, line
            assert node_id not in nodes, f"{node_id} declared twice"
            assert node_id not in _KEYWORDS
            nodes[node_id] = (opening, label)
        elif m := _EDGE.match(line):
            source, arrow, label, target = m.groups()
            edges.append((source, arrow, label, target))
        else:
            pytest.fail(f"not a node or an edge line: {line!r}")
    for source, _, _, target in edges:
        assert source in nodes, f"edge from undeclared node {source}"
        assert target in nodes, f"edge to undeclared node {target}"
    return nodes, edges


# --- the parallel-workflow example ------------------------------------------------------------

@pytest.fixture
def graph() -> FlowGraph:
    return build_graph(load_app(EXAMPLE))


def test_example_edges_are_exact(graph: FlowGraph) -> None:
    assert edge_set(graph) == {
        ("start-parallel-workflow", "workflow.step.process", "process-workflow-step", False),
        ("state", "state change", "workflow-completion", True),
        ("workflow-completion", "workflow.completed", "workflow-completed-consumers", True),
    }
    # Deterministic order: by source, then topic, then target.
    assert [e.source for e in graph.edges] == [
        "start-parallel-workflow", "state", "workflow-completion",
    ]


def test_example_nodes_kinds_and_labels(graph: FlowGraph) -> None:
    assert [(n.name, n.kind, n.labels) for n in graph.nodes] == [
        ("get-workflow", "http", ("GET /api/workflow/{workflowId}",)),
        ("process-workflow-step", "queue", ("workflow.step.process",)),
        ("start-parallel-workflow", "http", ("POST /api/workflow/start",)),
        ("workflow-completed-consumers", "noop", ()),
        ("workflow-completion", "state", ("state",)),
        ("workflow-timeout-check", "cron", ("*/5 * * * *",)),
        ("state", "source", ("state",)),
    ]
    start = graph.node("start-parallel-workflow")
    assert start.file == "steps/start_workflow_step.py"
    assert start.flows == (FLOW,)
    assert start.description == "Initiates a parallel workflow with multiple tasks"
    assert graph.node("state").file is None
    assert graph.flows == (FLOW,)
    assert graph.topics == ["workflow.completed", "workflow.step.process"]
    # Steps with no edges at all are still there.
    assert graph.outgoing("get-workflow") == [] and graph.incoming("get-workflow") == []


def test_example_text(graph: FlowGraph) -> None:
    text = to_text(graph)
    assert text == to_text(build_graph(load_app(EXAMPLE)))  # deterministic
    lines = text.splitlines()
    assert f"flow {FLOW}" in lines
    i = lines.index("  start-parallel-workflow [http] POST /api/workflow/start")
    assert lines[i + 1] == "    -> workflow.step.process -> process-workflow-step"
    j = lines.index("  workflow-completion [state] state")
    assert lines[j + 1] == ("    -> workflow.completed -> workflow-completed-consumers"
                            "  (virtual)")
    assert "  workflow-timeout-check [cron] */5 * * * *" in lines
    assert "  workflow-completed-consumers [noop]" in lines
    steps = [ln.split()[0] for ln in lines if ln.startswith("  ") and not ln.startswith("    ")]
    assert steps == sorted(steps) and len(steps) == 6


def test_example_mermaid(graph: FlowGraph) -> None:
    text = to_mermaid(graph)
    nodes, edges = check_mermaid(text)
    assert len(nodes) == 7
    assert set(edges) == {
        ("step_start_parallel_workflow", "-->", "workflow.step.process",
         "step_process_workflow_step"),
        ("src_state", "-.->", "state change", "step_workflow_completion"),
        ("step_workflow_completion", "-.->", "workflow.completed",
         "step_workflow_completed_consumers"),
    }
    lines = text.splitlines()
    assert ('    step_start_parallel_workflow -->|"workflow.step.process"| '
            "step_process_workflow_step") in lines
    assert ('    step_workflow_completion -.->|"workflow.completed"| '
            "step_workflow_completed_consumers") in lines
    # Shapes differ by kind.
    shapes = {nid: opening for nid, (opening, _) in nodes.items()}
    assert shapes["step_start_parallel_workflow"] == '[/"'
    assert shapes["step_process_workflow_step"] == '["'
    assert shapes["step_workflow_timeout_check"] == '{{"'
    assert shapes["step_workflow_completion"] == '{"'
    assert shapes["step_workflow_completed_consumers"] == '(["'
    assert shapes["src_state"] == '[("'
    assert nodes["step_start_parallel_workflow"][1] == (
        "start-parallel-workflow<br/>POST /api/workflow/start")


def test_example_json(graph: FlowGraph) -> None:
    data = to_json(graph)
    assert json.loads(json.dumps(data)) == data
    assert data["flows"] == [FLOW]
    assert data["topics"] == ["workflow.completed", "workflow.step.process"]
    assert data["edges"] == [
        {"source": "start-parallel-workflow", "target": "process-workflow-step",
         "topic": "workflow.step.process", "virtual": False},
        {"source": "state", "target": "workflow-completion", "topic": "state change",
         "virtual": True},
        {"source": "workflow-completion", "target": "workflow-completed-consumers",
         "topic": "workflow.completed", "virtual": True},
    ]
    by_name = {s["name"]: s for s in data["steps"]}
    assert set(by_name) == {
        "get-workflow", "process-workflow-step", "start-parallel-workflow",
        "workflow-completed-consumers", "workflow-completion", "workflow-timeout-check",
    }
    assert by_name["start-parallel-workflow"] == {
        "name": "start-parallel-workflow",
        "file": "steps/start_workflow_step.py",
        "kind": "http",
        "triggers": ["POST /api/workflow/start"],
        "flows": [FLOW],
        "description": "Initiates a parallel workflow with multiple tasks",
        "enqueues": ["workflow.step.process"],
        "subscribes": [],
        "virtual_enqueues": [],
        "virtual_subscribes": [],
        "ray": {},
    }
    assert by_name["process-workflow-step"]["subscribes"] == ["workflow.step.process"]
    assert by_name["workflow-completed-consumers"]["virtual_subscribes"] == [
        "workflow.completed"]
    assert data["pseudo_nodes"] == [{"name": "state", "kind": "source", "label": "state"}]


def test_example_flow_filter_and_unknown_flow(graph: FlowGraph) -> None:
    only = build_graph(load_app(EXAMPLE), FLOW)
    assert only.flow == FLOW and only.flows == (FLOW,)
    assert only.nodes == graph.nodes and only.edges == graph.edges
    with pytest.raises(ValueError, match="unknown flow 'nope'") as info:
        build_graph(load_app(EXAMPLE), "nope")
    assert FLOW in str(info.value)


def test_module_does_not_import_ray() -> None:
    imported: list[str] = []
    for path in Path(raypipe.flows.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "raypipe.flows.graph" in imported, "the walk found the package's imports"
    assert not [m for m in imported if m == "ray" or m.startswith(("ray.", "raypipe.runtime"))]


# --- a small app: both config shapes, dangling topics, sources, several flows -----------------

SHOP = {
    "api_step.py": """
        from raypipe import StepConfig, http
        config = StepConfig(
            name="api", triggers=[http("POST", "/orders/:orderId")],
            enqueues=["order.created", "order.audit"], flows=["orders"],
        )
        async def handler(req, ctx): ...
    """,
    "worker_step.py": """
        config = {"type": "event", "name": "worker", "subscribes": ["order.created"],
                  "emits": ["order.done"], "flows": ["orders"]}
        async def handler(data, ctx): ...
    """,
    "mailer_step.py": """
        config = {"type": "event", "name": "mailer", "subscribes": ["order.created"],
                  "virtualEmits": [{"topic": "mail.sent", "label": "mail"}],
                  "flows": ["orders", "mail"]}
        async def handler(data, ctx): ...
    """,
    "nightly_step.py": """
        config = {"type": "cron", "name": "nightly", "cron": "0 3 * * *",
                  "emits": ["order.audit"], "flows": ["ops"]}
        async def handler(_, ctx): ...
    """,
    "auditor_step.py": """
        from raypipe import StepConfig, queue
        config = StepConfig(name="auditor", triggers=[queue("order.audit")], flows=["ops"])
        async def handler(data, ctx): ...
    """,
    "watch_step.py": """
        from raypipe import StepConfig, state, stream
        config = StepConfig(name="watch", triggers=[state(group_id="orders")], flows=["ops"])
        async def handler(change, ctx): ...
    """,
    "live_step.py": """
        from raypipe import StepConfig, stream
        config = StepConfig(name="live", triggers=[stream("orders", group_id="open")],
                            flows=["ops"])
        async def handler(change, ctx): ...
    """,
    "loose_step.py": """
        config = {"name": "loose", "triggers": [{"type": "queue", "topic": "order.done"}]}
        async def handler(data, ctx): ...
    """,
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    files = dict(SHOP)
    # Without `loose`, order.done has no subscriber at all.
    del files["loose_step.py"]
    return write_app(tmp_path / "shop", files)


def test_dangling_topics_become_topic_nodes(shop: Path) -> None:
    graph = build_graph(load_app(shop))
    assert edge_set(graph) == {
        ("api", "order.audit", "auditor", False),
        ("api", "order.created", "mailer", False),
        ("api", "order.created", "worker", False),
        ("nightly", "order.audit", "auditor", False),
        ("mailer", "mail.sent", "topic:mail.sent", True),
        ("worker", "order.done", "topic:order.done", False),
        ("state", "state change", "watch", True),
        ("stream:orders", "stream change", "live", True),
    }
    kinds = {n.name: n.kind for n in graph.nodes}
    assert kinds == {
        "api": "http", "worker": "queue", "mailer": "queue", "nightly": "cron",
        "auditor": "queue", "watch": "state", "live": "stream",
        "topic:mail.sent": "topic", "topic:order.done": "topic",
        "state": "source", "stream:orders": "source",
    }
    labels = {n.name: n.labels for n in graph.nodes}
    assert labels["api"] == ("POST /orders/{orderId}",)
    assert labels["nightly"] == ("0 3 * * *",)
    assert labels["watch"] == ("state:orders",)
    assert labels["live"] == ("stream:orders/open",)
    assert labels["topic:order.done"] == ("order.done",)
    assert graph.flows == ("mail", "ops", "orders")
    assert graph.topics == ["mail.sent", "order.audit", "order.created", "order.done"]

    text = to_text(graph)
    assert "    -> order.done -> topic:order.done  (no subscriber)" in text.splitlines()
    assert "    -> mail.sent -> topic:mail.sent  (no subscriber, virtual)" in text.splitlines()
    # mailer is in two flows, so it is listed under both.
    assert text.count("  mailer [queue] order.created") == 2

    nodes, edges = check_mermaid(to_mermaid(graph))
    ids = mermaid_ids(graph)
    assert nodes[ids["topic:order.done"]] == ('>"', "order.done")
    assert nodes[ids["stream:orders"]] == ('[("', "stream:orders")
    assert nodes[ids["live"]][0] == '(("'
    assert (ids["mailer"], "-.->", "mail.sent", ids["topic:mail.sent"]) in edges
    assert (ids["worker"], "-->", "order.done", ids["topic:order.done"]) in edges

    data = to_json(graph)
    assert json.loads(json.dumps(data)) == data
    assert {p["name"] for p in data["pseudo_nodes"]} == {
        "state", "stream:orders", "topic:mail.sent", "topic:order.done"}


def test_a_subscriber_anywhere_means_not_dangling(shop: Path) -> None:
    write_app(shop, {"loose_step.py": SHOP["loose_step.py"]})
    graph = build_graph(load_app(shop))
    assert ("worker", "order.done", "loose", False) in edge_set(graph)
    assert "topic:order.done" not in {n.name for n in graph.nodes}
    # A step in no flow gets its own section in the text.
    text = to_text(graph)
    assert text.splitlines()[-1] == "  loose [queue] order.done"
    assert "(no flow)" in text.splitlines()


def test_flow_filter_keeps_members_their_edges_and_pseudo_nodes(shop: Path) -> None:
    app = load_app(shop)
    orders = build_graph(app, "orders")
    assert [n.name for n in orders.steps] == ["api", "mailer", "worker"]
    assert edge_set(orders) == {
        ("api", "order.created", "mailer", False),
        ("api", "order.created", "worker", False),
        ("mailer", "mail.sent", "topic:mail.sent", True),
        ("worker", "order.done", "topic:order.done", False),
    }
    assert {n.name for n in orders.nodes if not n.is_step} == {
        "topic:mail.sent", "topic:order.done"}
    check_mermaid(to_mermaid(orders))
    assert to_json(orders)["flows"] == ["orders"]
    assert "auditor" not in to_text(orders)

    ops = build_graph(app, "ops")
    assert edge_set(ops) == {
        ("nightly", "order.audit", "auditor", False),
        ("state", "state change", "watch", True),
        ("stream:orders", "stream change", "live", True),
    }
    assert to_text(ops).splitlines()[:2] == ["app shop", ""]

    mail = build_graph(app, "mail")
    assert [n.name for n in mail.nodes] == ["mailer", "topic:mail.sent"]
    assert mail.topics == ["mail.sent", "order.created"]

    with pytest.raises(ValueError) as info:
        build_graph(app, "billing")
    assert "'mail', 'ops', 'orders'" in str(info.value)


def test_wildcard_subscribers(tmp_path: Path) -> None:
    root = write_app(tmp_path / "tap", {
        "source_step.py": """
            from raypipe import StepConfig, http
            config = StepConfig(name="source", triggers=[http("GET", "/go")],
                                enqueues=["x"], virtual_enqueues=["y"], flows=["f"])
            async def handler(req, ctx): ...
        """,
        "b_step.py": """
            config = {"type": "event", "name": "b", "subscribes": ["x"], "flows": ["f"]}
            async def handler(data, ctx): ...
        """,
        "tap_step.py": """
            from raypipe import StepConfig, queue
            config = StepConfig(name="tap", triggers=[queue("*")], flows=["f"])
            async def handler(data, ctx): ...
        """,
        "audit_step.py": """
            config = {"type": "noop", "name": "audit", "virtualSubscribes": ["*"]}
        """,
    })
    graph = build_graph(load_app(root))
    assert edge_set(graph) == {
        ("source", "x", "b", False),
        ("source", "x", "tap", False),
        ("source", "y", "tap", True),
        ("source", "x", "audit", True),
        ("source", "y", "audit", True),
    }
    assert not [n for n in graph.nodes if n.kind == "topic"]
    assert graph.topics == ["x", "y"]
    assert to_json(graph)["topics"] == ["x", "y"]
    assert graph.node("tap").labels == ("*",)
    check_mermaid(to_mermaid(graph))


def test_real_path_wins_over_virtual(tmp_path: Path) -> None:
    root = write_app(tmp_path / "both", {
        "p_step.py": """
            config = {"name": "p", "triggers": [{"type": "cron", "expression": "* * * * *"}],
                      "enqueues": ["t"], "virtualEnqueues": ["t"]}
            async def handler(_, ctx): ...
        """,
        "q_step.py": """
            config = {"name": "q", "triggers": [{"type": "queue", "topic": "t"}],
                      "virtualSubscribes": ["t"]}
            async def handler(data, ctx): ...
        """,
    })
    graph = build_graph(load_app(root))
    assert graph.edges == (FlowEdge("p", "q", "t", False),)


def test_awkward_names_stay_valid_mermaid(tmp_path: Path) -> None:
    root = write_app(tmp_path / "odd", {
        "a_step.py": """
            from raypipe import StepConfig, http, state
            config = StepConfig(name='say "hi" <b>#1', triggers=[http("GET", "/x")],
                                enqueues=['we"ird#topic'])
            async def handler(req, ctx): ...
        """,
        "b_step.py": """
            from raypipe import StepConfig, state
            config = StepConfig(name="state", triggers=[state()])
            async def handler(change, ctx): ...
        """,
        "c_step.py": """
            from raypipe import StepConfig, queue
            config = StepConfig(name="end", triggers=[queue("a-b")])
            async def handler(data, ctx): ...
        """,
        "d_step.py": """
            from raypipe import StepConfig, queue
            config = StepConfig(name="e-nd", triggers=[queue("a_b")])
            async def handler(data, ctx): ...
        """,
        "e_step.py": """
            from raypipe import StepConfig, queue
            config = StepConfig(name="e_nd", triggers=[queue("a_b")])
            async def handler(data, ctx): ...
        """,
    })
    graph = build_graph(load_app(root))
    # A step named "state" does not swallow the pseudo source node.
    assert ("state#2", "state change", "state", True) in edge_set(graph)
    assert graph.node("state#2").kind == "source"
    ids = mermaid_ids(graph)
    assert len(set(ids.values())) == len(ids)
    assert ids["e-nd"] != ids["e_nd"]
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in ids.values())
    text = to_mermaid(graph)
    nodes, edges = check_mermaid(text)
    label = nodes[ids['say "hi" <b>#1']][1]
    assert label == "say #quot;hi#quot; #lt;b#gt;#35;1<br/>GET /x"
    assert (ids['say "hi" <b>#1'], "-->", "we#quot;ird#35;topic",
            ids['topic:we"ird#topic']) in edges
