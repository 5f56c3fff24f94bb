"""StepConfig, the trigger constructors, and check_config over every config shape."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from raypipe import QueueConfig, StepConfig, cron, http, queue, state, stream
from raypipe import triggers as t
from raypipe.schemas import Schema
from raypipe.step_configs import ConfigFieldError, check_config
from raypipe.steps import Step


class Body(BaseModel):
    name: str


class Out(BaseModel):
    id: str


def is_big(value: Any) -> bool:
    return bool(value)


# --- constructors ----------------------------------------------------------------------------


def test_http_constructor_normalises_method_and_path() -> None:
    tr = http("post", "/users/:userId/posts/:post_id", body_schema=Body, middleware=[is_big])
    assert (tr.type, tr.method, tr.path) == ("http", "POST", "/users/{userId}/posts/{post_id}")
    assert tr.body_schema is Body
    assert tr.middleware == (is_big,)
    assert tr.query_params == ()
    assert http("GET", "/a/{id}").path == "/a/{id}"


def test_queue_cron_state_stream_constructors() -> None:
    q = queue("orders.created", input=Body, condition=is_big)
    assert (q.type, q.topic, q.input, q.condition) == ("queue", "orders.created", Body, is_big)
    assert q.config == QueueConfig()
    assert (q.config.type, q.config.max_retries, q.config.backoff) == ("standard", 3,
                                                                      "exponential")
    assert (cron("*/5 * * * *").type, cron("*/5 * * * *").expression) == ("cron", "*/5 * * * *")
    st = state(condition=is_big, group_id="orders")
    assert (st.type, st.group_id, st.condition) == ("state", "orders", is_big)
    sm = stream("chat", group_id="room-1", item_id="m1")
    assert (sm.type, sm.stream_name, sm.group_id, sm.item_id) == ("stream", "chat", "room-1", "m1")


def test_step_config_defaults_and_noop() -> None:
    cfg = StepConfig(name="diagram-only", virtual_subscribes=["x.done"])
    assert cfg.is_noop
    assert not StepConfig(name="a", triggers=[cron("* * * * *")]).is_noop
    step = Step(config=StepConfig(name="s", triggers=[queue("a"), http("GET", "/"), queue("b")]),
                handler=None, file="s_step.py", module="m")
    assert step.subscribes == ("a", "b")
    assert step.queue_trigger("b").topic == "b"
    with pytest.raises(KeyError):
        step.queue_trigger("c")


# --- check_config: the accepted shapes -------------------------------------------------------


def test_check_1x_step_config_compiles_schemas() -> None:
    cfg = check_config(StepConfig(
        name="create",
        triggers=[http("POST", "/items/:id", body_schema=Body, response_schema={201: Out}),
                  queue("item.retry", input=Body, config=QueueConfig(type="fifo"))],
        enqueues=["item.created", {"topic": "item.audit", "label": "audit"}],  # type: ignore[list-item]
        flows=["items"],
    ))
    h, q = cfg.triggers
    assert isinstance(h.body_schema, Schema) and h.body_schema.spec is Body
    assert set(h.response_schema) == {201}
    assert h.response_schema[201].spec is Out
    assert h.path == "/items/{id}"
    assert isinstance(q.input, Schema) and q.config.type == "fifo"
    assert cfg.enqueues == ("item.created", "item.audit")
    assert cfg.flows == ("items",)


def test_check_1x_dict_with_every_trigger_type_and_camel_case_keys() -> None:
    cfg = check_config({
        "name": "everything",
        "description": "d",
        "triggers": [
            {"type": "http", "method": "put", "path": "/x/:xId", "bodySchema": Body,
             "responseSchema": Out, "queryParams": [{"name": "q"}]},
            {"type": "queue", "topic": "t", "input": {"type": "object"},
             "config": {"maxRetries": 5, "backoffDelayMs": 10, "visibilityTimeout": 30,
                        "type": "fifo", "concurrency": 2}},
            {"type": "cron", "expression": "0 */2 * * * *"},
            {"type": "state", "groupId": "orders", "condition": is_big},
            {"type": "stream", "streamName": "chat", "groupId": "g", "itemId": "i"},
        ],
        "enqueues": ["t"],
        "virtualEnqueues": ["v.out"],
        "virtualSubscribes": ["v.in"],
    })
    h, q, c, s, sm = cfg.triggers
    assert (h.method, h.path, h.body_schema.spec, h.response_schema.spec) == (
        "PUT", "/x/{xId}", Body, Out)
    assert h.query_params == ({"name": "q"},)
    assert q.config == QueueConfig(type="fifo", max_retries=5, backoff_delay_ms=10,
                                   visibility_timeout=30, concurrency=2)
    assert q.input.validate({"a": 1}) == {"a": 1}
    assert c.expression == "0 */2 * * * *"
    assert (s.group_id, s.condition) == ("orders", is_big)
    assert (sm.stream_name, sm.group_id, sm.item_id) == ("chat", "g", "i")
    assert (cfg.virtual_enqueues, cfg.virtual_subscribes) == (("v.out",), ("v.in",))


def test_check_0x_api_dict() -> None:
    cfg = check_config({
        "type": "api", "name": "GetUser", "method": "GET", "path": "/users/:userId/status",
        "flows": ["users"], "emits": [], "responseSchema": {200: Out, "404": Out},
    })
    (tr,) = cfg.triggers
    assert isinstance(tr, t.HttpTrigger)
    assert (tr.method, tr.path) == ("GET", "/users/{userId}/status")
    assert set(tr.response_schema) == {200, 404}
    assert cfg.flows == ("users",)
    assert cfg.enqueues == ()


def test_check_0x_event_dict_with_infrastructure_queue() -> None:
    cfg = check_config({
        "type": "event", "name": "Send", "subscribes": ["a", "b"], "emits": ["c"],
        "input": Body, "virtualEmits": ["d"],
        "infrastructure": {"queue": {"type": "standard", "maxRetries": 7,
                                     "visibilityTimeout": 60}},
    })
    assert [tr.topic for tr in cfg.triggers] == ["a", "b"]
    for tr in cfg.triggers:
        assert tr.config.max_retries == 7
        assert tr.config.visibility_timeout == 60
        assert tr.input.spec is Body
    assert (cfg.enqueues, cfg.virtual_enqueues) == (("c",), ("d",))


def test_check_0x_cron_and_noop_dicts() -> None:
    cfg = check_config({"type": "cron", "name": "Tick", "cron": "*/5 * * * *", "emits": ["t"]})
    assert [(tr.type, tr.expression) for tr in cfg.triggers] == [("cron", "*/5 * * * *")]
    noop = check_config({"type": "noop", "name": "Human", "virtualEmits": ["x"],
                         "virtualSubscribes": ["y"]})
    assert noop.is_noop
    assert (noop.virtual_enqueues, noop.virtual_subscribes) == (("x",), ("y",))


@pytest.mark.parametrize("expression", ["*/5 * * * *", "*/10 * * * * *"])
def test_cron_with_5_or_6_fields_is_valid(expression: str) -> None:
    (tr,) = check_config(StepConfig(name="c", triggers=[cron(expression)])).triggers
    assert tr.expression == expression


# --- check_config: errors name the field -----------------------------------------------------

ERRORS: list[tuple[str, Any, str]] = [
    ("unknown trigger type", {"name": "a", "triggers": [{"type": "webhook"}]},
     "triggers[0].type"),
    ("unknown 0.x step type", {"name": "a", "type": "webhook"}, "type"),
    ("not a trigger", StepConfig(name="a", triggers=["queue"]), "triggers[0]"),  # type: ignore[list-item]
    ("cron with 4 fields", StepConfig(name="a", triggers=[cron("* * * *")]),
     "triggers[0].expression"),
    ("cron with 8 fields", StepConfig(name="a", triggers=[cron("* * * * * * * *")]),
     "triggers[0].expression"),
    ("0.x cron out of range", {"name": "a", "type": "cron", "cron": "61 * * * *"}, "cron"),
    ("bad method", StepConfig(name="a", triggers=[http("FETCH", "/x")]), "triggers[0].method"),
    ("0.x bad method", {"name": "a", "type": "api", "method": "FETCH", "path": "/x"}, "method"),
    ("path without /", StepConfig(name="a", triggers=[http("GET", "users")]), "triggers[0].path"),
    ("0.x path without /", {"name": "a", "type": "api", "method": "GET", "path": "x"}, "path"),
    ("bad body schema", StepConfig(name="a", triggers=[http("POST", "/x", body_schema=42)]),
     "triggers[0].body_schema"),
    ("0.x bad bodySchema", {"name": "a", "type": "api", "path": "/x", "bodySchema": 42},
     "bodySchema"),
    ("0.x bad response schema", {"name": "a", "type": "api", "path": "/x",
                                 "responseSchema": {200: 42}}, "responseSchema[200]"),
    ("bad JSON-schema input", {"name": "a", "type": "event", "subscribes": ["t"],
                               "input": {"type": "nope"}}, "input"),
    ("non-callable condition", StepConfig(name="a", triggers=[queue("t", condition="yes")]),
     "triggers[0].condition"),
    ("0.x non-callable condition", {"name": "a", "type": "event", "subscribes": ["t"],
                                    "condition": 1}, "condition"),
    ("unknown config key", {"name": "a", "triggers": [], "emit": ["x"]}, "emit"),
    ("0.x unknown config key", {"name": "a", "type": "noop", "bogus": 1}, "bogus"),
    ("negative max_retries", StepConfig(name="a", triggers=[
        queue("t", config=QueueConfig(max_retries=-1))]), "triggers[0].config.max_retries"),
    ("0.x negative maxRetries", {"name": "a", "type": "event", "subscribes": ["t"],
                                 "infrastructure": {"queue": {"maxRetries": -1}}},
     "infrastructure.queue.maxRetries"),
    ("1.x dict negative maxRetries", {"name": "a", "triggers": [
        {"type": "queue", "topic": "t", "config": {"maxRetries": -1}}]},
     "triggers[0].config.maxRetries"),
    ("unknown queue setting", {"name": "a", "type": "event", "subscribes": ["t"],
                               "infrastructure": {"queue": {"retries": 1}}},
     "infrastructure.queue.retries"),
    ("bad queue type", StepConfig(name="a", triggers=[queue("t", config=QueueConfig(
        type="lifo"))]), "triggers[0].config.type"),  # type: ignore[arg-type]
    ("zero visibility timeout", StepConfig(name="a", triggers=[queue("t", config=QueueConfig(
        visibility_timeout=0))]), "triggers[0].config.visibility_timeout"),
    ("stream without name", {"name": "a", "triggers": [{"type": "stream", "streamName": ""}]},
     "triggers[0].streamName"),
    ("event without subscribes", {"name": "a", "type": "event"}, "subscribes"),
    ("missing name", {"type": "noop"}, "name"),
    ("triggers not a list", StepConfig(name="a", triggers=http("GET", "/")),  # type: ignore[arg-type]
     "triggers"),
    ("emits not a list", {"name": "a", "type": "noop", "emits": "x"}, "emits"),
    ("not a config", 42, "config"),
]


@pytest.mark.parametrize(("raw", "field"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_config_errors_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ConfigFieldError) as info:
        check_config(raw)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
