"""Class handlers, actor pools and batches in-process (raypipe.testing runs a pool step's
batches on the test's loop, as a pool's actor runs them): the model is made once, batches of
up to max_size reach one __call__, a failed input is retried alone and the rest settle once.
On Ray: tests/runtime/test_pools.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from raypipe.errors import AppLoadError
from raypipe.testing import TestApp

APP = Path(__file__).resolve().parent / "apps" / "pool"


def test_a_class_handler_takes_batches_and_retries_a_failed_item_alone() -> None:
    with TestApp(APP) as app:
        r = app.client.post("/start", json={"n": 20, "poison": 7})
        assert r.status_code == 202
        app.run_until_idle()
        results = {int(i["id"]): i["data"] for i in app.state.items("results-a")}
        assert sorted(results) == list(range(20))
        assert all(r["n"] == 1 and r["value"] == 2 * i for i, r in results.items())
        # One model for the whole run; batches of up to 8 reached it.
        models = {r["model"] for r in results.values()}
        assert len(models) == 1
        model_class = app.runtime.app.steps["model"].handler
        loaded = sys.modules[model_class.__module__].LOADED
        assert loaded == list(models)
        assert max(r["batch"] for r in results.values()) == 8
        # The poisoned item alone went round again, in a batch of one.
        assert results[7]["attempt"] == 2 and results[7]["batch"] == 1
        assert all(r["attempt"] == 1 for i, r in results.items() if i != 7)
        assert app.dead_letters.list() == []


def test_batches_need_a_class_handler(tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "f_step.py").write_text(
        "from raypipe import RayOptions, StepConfig, queue\n"
        "config = StepConfig(name='f', triggers=[queue('t')], ray=RayOptions(batch=4))\n"
        "async def handler(x, ctx):\n    pass\n")
    with pytest.raises(AppLoadError) as info:
        TestApp(tmp_path).__enter__()
    assert "config.ray.batch" in str(info.value) and "class handler" in str(info.value)


@pytest.mark.parametrize("ray,message", [
    ("RayOptions(actors=0)", "actors must be"),
    ("RayOptions(actors=(3, 2))", "actors must be"),
    ("{'actors': 2, 'batch': {'max_size': 0}}", "max_size"),
])
def test_pool_options_are_checked(tmp_path: Path, ray: str, message: str) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "c_step.py").write_text(
        "from raypipe import RayOptions, StepConfig, queue\n"
        f"config = StepConfig(name='c', triggers=[queue('t')], ray={ray})\n"
        "class handler:\n    def __call__(self, x, ctx):\n        pass\n")
    with pytest.raises(AppLoadError) as info:
        TestApp(tmp_path).__enter__()
    assert message in str(info.value)
