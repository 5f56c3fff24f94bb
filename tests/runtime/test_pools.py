"""A class-handler step on a pool of 2 Ray actors, with batches: the model is made twice (once
per actor), batches of up to 8 reach one call, a failed item is retried alone, and an actor
killed mid-batch fails only the attempts it held, which run again on the actors left or a
new one: every item counted exactly once, nothing in flight, nothing dead-lettered."""

from __future__ import annotations

from typing import Any

import httpx
import ray

from raypipe import constants
from raypipe.runtime.bridge import runtime_for
from tests.conftest import APPS, wait_for
from tests.runtime.test_metrics import scrape


def _results(client: httpx.Client, run: str) -> dict[int, Any]:
    items = client.get(f"/_raypipe/api/state/results-{run}").json()
    return {int(i["id"]): i["data"] for i in items}


def _stats(spec: Any) -> dict[str, Any]:
    return ray.get(runtime_for(spec).dispatcher.stats.remote())  # type: ignore[no-any-return]


def test_a_class_handler_on_an_actor_pool(deploy_app: Any) -> None:
    d = deploy_app(APPS / "pool")
    spec = d.spec
    with httpx.Client(base_url=d.url, timeout=30) as client:
        assert client.post("/start", json={"n": 40, "poison": 7}).status_code == 202
        wait_for(lambda: len(_results(client, "a")) == 40, timeout=120,
                 message=lambda: f"40 results, have {len(_results(client, 'a'))}")
        results = _results(client, "a")
        assert all(r["n"] == 1 and r["value"] == 2 * i for i, r in results.items())
        assert len({r["model"] for r in results.values()}) <= 2
        assert max(r["batch"] for r in results.values()) > 1  # batched
        assert results[7]["attempt"] == 2 and results[7]["batch"] == 1  # retried alone
        # Every result may have come from one actor while the other still made its model
        # (a busy machine): the pool is at its size once both have started.
        wait_for(lambda: _stats(spec)["pools"]["model"]["actors"] == 2, timeout=120,
                 message=lambda: f"the pool's 2 actors started: {_stats(spec)['pools']}")
        pool = _stats(spec)["pools"]["model"]
        assert pool["actors"] == 2 and pool["min"] == pool["max"] == 2

        # A kill mid-batch: each batch takes a second, so one is running when it comes.
        assert client.post("/start", json={"n": 24, "slow": 1.0, "run": "b"}).status_code == 202
        wait_for(lambda: _stats(spec)["pools"]["model"]["busy"] > 0, timeout=60,
                 message="a batch running")
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                 if a["namespace"] == spec.namespace
                 and a["name"].startswith(constants.POOL_ACTOR_PREFIX)]
        assert len(names) == 2
        ray.kill(ray.get_actor(names[0], namespace=spec.namespace), no_restart=True)
        wait_for(lambda: len(_results(client, "b")) == 24, timeout=180,
                 message=lambda: f"24 results, have {len(_results(client, 'b'))}")
        wait_for(lambda: _stats(spec)["in_flight"] == 0, timeout=60, message="nothing in flight")
        results = _results(client, "b")
        assert all(r["n"] == 1 for r in results.values()), results  # each item once
        stats = _stats(spec)
        assert stats["dead_letters"] == 0
        assert stats["steps"]["model"].get("crashes", 0) >= 1  # the kill failed attempts
        # The killed actor is replaced (the pool keeps its min).
        wait_for(lambda: _stats(spec)["pools"]["model"]["actors"] == 2, timeout=60,
                 message=lambda: f"the pool back to 2 actors: {_stats(spec)['pools']}")


def test_a_reload_moves_the_pool_to_the_new_version(deploy_app: Any, tmp_path: Any) -> None:
    """`raypipe dev`'s reload while batches run and wait: the old pool's actors finish what
    they hold and go, a new pool makes the new version's model, and every item is counted
    once, nothing left waiting."""
    import shutil

    from raypipe.runtime.deploy import reload
    from raypipe.runtime.spec import AppSpec

    root = tmp_path / "pool"
    shutil.copytree(APPS / "pool", root, ignore=shutil.ignore_patterns("__pycache__"))
    d = deploy_app(root)
    with httpx.Client(base_url=d.url, timeout=30) as client:
        assert client.post("/start", json={"n": 24, "slow": 0.5, "run": "r"}).status_code == 202
        wait_for(lambda: _stats(d.spec)["pools"]["model"]["busy"] > 0, timeout=60,
                 message="a batch running")
        model = root / "steps" / "model_step.py"
        model.write_text(model.read_text().replace("[2] * 1000", "[3] * 1000"))
        new = AppSpec.from_dir(root, name=d.spec.settings.name, port=d.spec.settings.port,
                               dev=True)
        running = reload(d.spec, new)
        assert client.post("/start", json={"n": 8, "run": "s"}).status_code == 202
        wait_for(lambda: len(_results(client, "r")) == 24 and len(_results(client, "s")) == 8,
                 timeout=180, message="both runs")
        wait_for(lambda: _stats(running)["in_flight"] == 0, timeout=60,
                 message="nothing in flight")
        first, second = _results(client, "r"), _results(client, "s")
        assert all(r["n"] == 1 for r in [*first.values(), *second.values()])
        # The run started after the reload ran on the new version's model only.
        assert all(r["value"] == 3 * i for i, r in second.items())
        old_models = {r["model"] for i, r in first.items() if r["value"] == 2 * i}
        assert old_models  # the run under way when the reload came ran on the old model
        assert {r["model"] for r in second.values()}.isdisjoint(old_models)
        assert _stats(running)["dead_letters"] == 0


def test_a_pool_grows_with_its_backlog_and_shrinks_when_idle(deploy_app: Any,
                                                             page: Any) -> None:
    """actors=(1, 3), idle_s=2: a burst of slow batches grows the pool to 3 actors and no
    further; two idle seconds after the burst it is back to 1, with no batch coming to
    trigger it. Each item runs once. The workbench's status page and the metrics show it."""
    d = deploy_app(APPS / "pool-scaling")
    def pool() -> dict[str, int]:
        # Absent until the dispatcher starts it (just after the app answers).
        return _stats(d.spec)["pools"].get("scaled", {"actors": 0, "starting": 0})

    wait_for(lambda: pool()["actors"] == 1, timeout=60, message="the pool's min actor")
    with httpx.Client(base_url=d.url, timeout=30) as client:
        assert client.post("/burst", json={"n": 12, "slow": 1.0}).status_code == 202
        seen: list[int] = []

        def grown() -> bool:
            now = pool()
            seen.append(now["actors"] + now["starting"])
            return now["actors"] == 3

        wait_for(grown, timeout=120, message=lambda: f"3 actors, have {pool()}")
        # The workbench shows the pool as the dispatcher counts it (it polls every 2 s).
        page.goto(f"{d.url}/_raypipe/#/status")
        row = page.locator("[data-testid=pools] tr[data-pool=scaled]")
        row.locator("td[data-col=max]").filter(has_text="3").wait_for()
        assert client.get("/_raypipe/api/status").json()["pools"]["scaled"]["max"] == 3

        def items() -> dict[str, Any]:
            return {i["id"]: i["data"] for i in
                    client.get("/_raypipe/api/state/burst").json()}

        wait_for(lambda: len(items()) == 12, timeout=120,
                 message=lambda: f"12 items, have {len(items())}")
        assert all(v["n"] == 1 for v in items().values())
        assert len({v["pid"] for v in items().values()}) > 1  # spread over the actors
        wait_for(lambda: pool()["actors"] == 1 and pool()["starting"] == 0, timeout=30,
                 message=lambda: f"back to 1 actor, have {pool()}")
        assert max(seen) <= 3
        row.locator("td[data-col=actors]").filter(has_text="1").wait_for()
        assert row.locator("td[data-col=busy]").inner_text() == "0"
    # The Ray dashboard's metrics show the pool.
    expected = {"ray_raypipe_pool_actors{step=scaled}": 1,
                "ray_raypipe_pool_busy{step=scaled}": 0,
                "ray_raypipe_pool_backlog{step=scaled}": 0}
    name = d.spec.settings.name
    wait_for(lambda: all(scrape(name).get(k) == v for k, v in expected.items()), timeout=60,
             interval=1, message=lambda: f"{expected} in the metrics: {scrape(name)}")
