"""Per-step Ray options in configs, and the settings for the ingress and the logs (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raypipe import RayOptions, StepConfig, queue
from raypipe.engine.batching import Batcher
from raypipe.logger import StepLogger, _py_logger
from raypipe.ray_options import demand
from raypipe.settings import LogFormat, Settings
from raypipe.step_configs import ConfigFieldError, check_config


def test_options_from_stepconfig_and_dicts() -> None:
    native = check_config(StepConfig(name="a", triggers=[queue("t")],
                                     ray=RayOptions(num_gpus=1, memory=2**30)))
    assert native.ray.task_options(0.25) == {"num_cpus": 0.25, "num_gpus": 1, "memory": 2**30}
    motia = check_config({"name": "b", "triggers": [queue("t")],
                          "ray": {"numCpus": 2, "acceleratorType": "T4",
                                  "resources": {"gpu_node": 1}, "runtimeEnv": {"pip": ["x"]}}})
    assert motia.ray.task_options(0.25) == {
        "num_cpus": 2, "accelerator_type": "T4", "resources": {"gpu_node": 1},
        "runtime_env": {"pip": ["x"]}}
    assert demand(motia.ray, 0.25) == {"CPU": 2, "accelerator_type:T4": 0.001, "gpu_node": 1.0}


@pytest.mark.parametrize("ray", [{"num_gpu": 1}, {"num_gpus": -1}, {"max_batch": 0},
                                 {"resources": {"x": "many"}}, "gpu"])
def test_bad_options_name_the_field(ray: object) -> None:
    with pytest.raises(ConfigFieldError) as err:
        check_config({"name": "a", "triggers": [queue("t")], "ray": ray})
    assert err.value.field == "ray"


def test_a_step_at_its_own_limit_leaves_the_slots_to_the_others() -> None:
    import asyncio

    started: list[tuple[str, int]] = []

    async def run() -> None:
        gate = asyncio.Event()

        async def batch(step: str, chunk: list[int]) -> None:
            started.append((step, len(chunk)))
            await gate.wait()

        def spawn(coro: object) -> None:
            asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]

        limits = {"gpu": (1, 2), "cpu": (None, 32)}
        b: Batcher[int] = Batcher(lambda: 4, batch, spawn, lambda s: limits[s])
        for i in range(10):
            b.add("gpu", i)
            b.add("cpu", i)
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.sleep(0.01)

    asyncio.run(run())
    first = started[:4]
    # one gpu task of 2 (its limit: one in flight), the other three slots for cpu
    assert first.count(("gpu", 2)) == 1 and sum(1 for s, _ in first if s == "cpu") == 3


def test_ingress_and_log_settings(tmp_path: Path) -> None:
    s = Settings(ingress_autoscaling='{"min_replicas": 1, "max_replicas": 4}',
                 ingress_max_ongoing_requests=50, log_format="json",
                 log_file=str(tmp_path / "steps.log"))
    assert s.autoscaling_config == {"min_replicas": 1, "max_replicas": 4}
    assert s.log_format is LogFormat.JSON and hash(s)
    for h in list(_py_logger.handlers):  # this process's console handler, if a test made one
        if getattr(h, "_raypipe", False):
            _py_logger.removeHandler(h)
    try:
        StepLogger("step-a", "trace-1", json_lines=True, file=s.log_file).info(
            "hello", {"n": 1})
    finally:
        for h in list(_py_logger.handlers):
            if getattr(h, "_raypipe", False):
                h.close()
                _py_logger.removeHandler(h)
    line = json.loads((tmp_path / "steps.log").read_text().splitlines()[-1])
    assert line["msg"] == "hello" and line["step"] == "step-a" and line["fields"] == {"n": 1}
    assert line["level"] == "info"
