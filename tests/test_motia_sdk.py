"""raypipe's answer to ``import motia`` (no Ray): the names of Motia 1.x's Python SDK, never
shadowing a real ``motia``; and what the loader does for Motia-laid-out apps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import raypipe.motia
from raypipe.calls import Calls
from raypipe.context import FlowContext
from raypipe.handlers import call_handler, handler_args
from raypipe.loader import load_app, load_env
from raypipe.models import ApiRequest
from raypipe.schedules import check_cron, next_fire
from tests.test_loader import write as _app

# Motia 1.x's `motia.__all__` (frameworks/motia/motia-py/packages/motia/src/motia), less what
# only its iii engine has.
MOTIA_NAMES = {
    "api", "http", "queue", "cron", "state", "stream", "schema_to_json_schema", "step",
    "StepDefinition", "StepBuilder", "multi_trigger_step", "MultiTriggerStepBuilder",
    "ApiMiddleware", "ApiRequest", "ApiResponse", "ApiRouteMethod", "MotiaHttpRequest",
    "MotiaHttpArgs", "MotiaHttpResponse", "ApiTrigger", "CronTrigger", "Enqueue", "Enqueuer",
    "FlowContext", "QueryParam", "QueueTrigger", "StateTrigger", "StateTriggerInput", "Step",
    "StepConfig", "StreamConfig", "StreamAuthInput", "StreamAuthResult", "StreamEvent",
    "StreamSubscription", "StreamTrigger", "StreamTriggerInput", "TriggerCondition",
    "TriggerConfig", "TriggerInfo", "TriggerInput", "enqueue", "logger", "Stream",
    "StateManager", "stateManager", "is_api_trigger", "is_queue_trigger", "is_cron_trigger",
    "is_state_trigger", "is_stream_trigger", "is_api_step", "is_queue_step", "is_cron_step",
    "is_state_step", "is_stream_step", "get_api_triggers", "get_queue_triggers",
    "get_cron_triggers", "get_state_triggers", "get_stream_triggers", "generate_step_id",
}
III_ONLY = {"get_instance", "init_iii", "ChannelReader", "ChannelWriter", "Motia",
            "setup_step_endpoint", "tracing"}


def test_the_sdk_names_are_all_there() -> None:
    assert set(raypipe.motia.__all__) == MOTIA_NAMES
    for name in MOTIA_NAMES:
        assert getattr(raypipe.motia, name) is not None, name
    for name in III_ONLY:
        with pytest.raises(AttributeError, match="iii engine"):
            getattr(raypipe.motia, name)
    # Subscripted in annotations, as the SDK's code writes them.
    from raypipe.motia import ApiRequest, ApiResponse, FlowContext, MotiaHttpArgs, Stream
    assert ApiRequest[Any] and ApiResponse[Any] and FlowContext[Any] and MotiaHttpArgs[Any]
    assert Stream[dict[str, Any]]("x").stream_name == "x"
    assert raypipe.motia.generate_step_id("steps/a_step.py") == raypipe.motia.generate_step_id(
        "steps/a_step.py")


def test_import_motia_is_raypipes_and_never_shadows_a_real_one(tmp_path: Path) -> None:
    app = _app(tmp_path / "app", {"steps/a.step.py": """
        from motia import http
        from motia.types import FlowContext
        import motia
        config = {"name": "a", "triggers": [http("GET", "/a")]}
        def handler(request): return {"status": 200, "body": motia.__name__}
    """})
    check = ("import sys; from raypipe.loader import load_app; load_app(sys.argv[1]); "
             "import motia; print(motia.__name__)")
    out = subprocess.run([sys.executable, "-c", check, str(app)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "raypipe.motia"
    real = _app(tmp_path / "site", {"motia/__init__.py": "REAL = True\ndef http(*a, **k): ...\n",
                                    "motia/types.py": "FlowContext = object\n"})
    env = {**os.environ, "PYTHONPATH": str(real)}
    out = subprocess.run([sys.executable, "-c", check.replace("__name__", "REAL"), str(app)],
                         capture_output=True, text=True, env=env)
    # The real package's http() is not raypipe's, so the step fails to load, as it should.
    assert "raypipe.motia" not in out.stdout + out.stderr


def test_dotenv_never_overrides_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("RAYPIPE_T_SET=from-file\nRAYPIPE_T_NEW='new value'\n")
    monkeypatch.setenv("RAYPIPE_T_SET", "from-env")
    monkeypatch.delenv("RAYPIPE_T_NEW", raising=False)
    load_env(tmp_path)
    assert os.environ["RAYPIPE_T_SET"] == "from-env"
    assert os.environ["RAYPIPE_T_NEW"] == "new value"
    monkeypatch.delenv("RAYPIPE_T_NEW")


def test_layouts_relative_imports_and_in_code_streams(tmp_path: Path) -> None:
    app = load_app(_app(tmp_path, {
        "steps/__init__.py": "",
        "steps/orders/create.step.py": """
            from motia import Stream, http
            from .services.store import save
            orders = Stream("orders")
            config = {"name": "create", "triggers": [http("POST", "/orders")]}
            def handler(request): return save(request.body)
        """,
        "steps/orders/services/store.py": "def save(body): return body\n",
        "steps/orders/services/feeds.py": "from motia import Stream\nfeed = Stream('feed')\n",
        "steps/orders/list.step.py": """
            from motia import http
            from .services import feeds
            config = {"name": "list", "triggers": [http("GET", "/feed")]}
            def handler(request): return feeds.feed.get_group("all")
        """,
        "steps/native_step.py": """
            from raypipe import StepConfig, cron
            config = StepConfig(name="native", triggers=[cron("0 0 12 * * * *")])
            async def handler(_, ctx): ...
        """,
    }))
    assert sorted(app.steps) == ["create", "list", "native"]
    assert "orders" in app.streams
    assert "feed" in app.streams  # declared in a helper module the step imports
    assert app.steps["create"].lenient and not app.steps["native"].lenient


def test_cron_takes_5_6_and_7_fields() -> None:
    for expression in ("*/5 * * * *", "*/5 * * * * *", "*/5 * * * * * *", "0 0 12 1 1 * 2030"):
        assert check_cron(expression) is None, expression
    # from 2030-01-01 00:00 UTC to 12:00:30 that day
    assert next_fire("30 0 12 1 1 * 2030", 1893456000.0) == 1893499230.0
    assert "8 fields" in (check_cron("* * * * * * * *") or "")


def _ctx(trigger: Any) -> FlowContext:
    from raypipe.app import App
    from raypipe.settings import Settings

    class Nothing:
        state = streams = bus = dead_letters = None

    app = App(root=Path("."), settings=Settings(), steps={})
    return FlowContext(app, Nothing(), step=None, trace_id="t",  # type: ignore[arg-type]
                       trigger=trigger)


def test_handlers_get_the_arguments_they_take() -> None:
    from raypipe import cron, queue

    q, c = _ctx(queue("t")), _ctx(cron("* * * * *"))
    assert handler_args(lambda: None, 1, q) == ()
    assert handler_args(lambda input: None, 1, q) == (1,)
    assert handler_args(lambda context: None, None, c) == (c,)  # 0.x cron: handler(context)
    assert handler_args(lambda input, ctx: None, 1, q) == (1, q)
    assert handler_args(lambda *args: None, 1, q) == (1, q)


def test_match_dispatches_on_the_trigger_and_awaits_what_it_must() -> None:
    from raypipe import cron, http

    async def run() -> list[Any]:
        api, tick = _ctx(http("GET", "/x")), _ctx(cron("* * * * *"))
        req: ApiRequest[Any] = ApiRequest(body={"b": 1})

        async def on_http(r: ApiRequest[Any]) -> Any:
            return r.body

        def plain(_input: Any, ctx: FlowContext) -> Any:
            # a plain def handler returns ctx.match(...), which the runner awaits
            return ctx.match({"http": on_http, "cron": lambda: "cron ran"})

        return [await call_handler(plain, req, api), await call_handler(plain, None, tick),
                api.get_data(), tick.get_data(), api.is_api(), tick.is_cron()]

    assert asyncio.run(run()) == [{"b": 1}, "cron ran", {"b": 1}, None, True, True]


def test_unawaited_calls_run_in_order_when_the_handler_returns() -> None:
    done: list[str] = []

    async def write(name: str) -> str:
        done.append(name)
        return name

    async def run() -> list[str]:
        calls = Calls()
        calls.run(write("a"))  # never awaited
        assert await calls.run(write("b")) == "b"
        calls.run(write("c"))
        seen = list(done)
        await calls.settle()
        return seen

    assert asyncio.run(run()) == ["b"] and done == ["b", "a", "c"]


def test_unawaited_calls_to_one_target_start_together_and_targets_keep_their_order() -> None:
    """A handler's un-awaited enqueues reach the bus in one turn of the loop (one actor call,
    in their order) instead of one round trip each; a call to another target waits for the
    run before it, and a failed run stops the runs after it."""
    events: list[str] = []

    async def call(name: str, fail: bool = False) -> str:
        events.append(f"start {name}")
        await asyncio.sleep(0)
        events.append(f"end {name}")
        if fail:
            raise ValueError(name)
        return name

    async def run(fail: bool) -> None:
        calls = Calls()
        calls.run(call("set"), "StateAPI")
        for i in range(3):
            calls.run(call(f"enqueue {i}", fail=fail and i == 1), "FlowContext")
        calls.run(call("update"), "StateAPI")
        try:
            await calls.settle()
        finally:
            calls.discard()

    asyncio.run(run(fail=False))
    assert events == ["start set", "end set",
                      "start enqueue 0", "start enqueue 1", "start enqueue 2",
                      "end enqueue 0", "end enqueue 1", "end enqueue 2",
                      "start update", "end update"]
    events.clear()
    with pytest.raises(ValueError, match="enqueue 1"):
        asyncio.run(run(fail=True))
    assert "start update" not in events and "end enqueue 2" in events


def test_requests_answer_dict_style_in_motia_key_names() -> None:
    req: ApiRequest[Any] = ApiRequest(body={"a": 1}, path_params={"id": "7"},
                                      query_params={"q": "x"}, raw_body=b'{"a": 1}')
    assert req.get("body") == {"a": 1} and req["pathParams"] == {"id": "7"}
    assert req["queryParams"] == {"q": "x"} and req["rawBody"] == '{"a": 1}'
    assert req.get("missing", "default") == "default"
    req["user"] = {"id": 1}
    assert req["user"] == {"id": 1} and "user" in req and req.request is req
    assert list(req.request_body.stream) == [b'{"a": 1}']


def test_multi_trigger_steps_dispatch_per_trigger(tmp_path: Path) -> None:
    app = load_app(_app(tmp_path, {"steps/multi_step.py": """
        from motia import cron, multi_trigger_step, queue

        async def on_queue(input, ctx):
            return ("queue", input)

        def on_cron(ctx):
            return ("cron", ctx.is_cron())

        multi = multi_trigger_step({"name": "multi", "triggers": [queue("t"), cron("* * * * *")]})
        multi = multi.on_queue(on_queue).handlers({"cron": on_cron})
    """}))
    step = app.steps["multi"]
    queue_trigger, cron_trigger = step.config.triggers

    async def run() -> list[Any]:
        return [await call_handler(step.handler, {"n": 1}, _ctx(queue_trigger)),
                await call_handler(step.handler, None, _ctx(cron_trigger))]

    assert asyncio.run(run()) == [("queue", {"n": 1}), ("cron", True)]
