"""Per-step Ray options on a throwaway cluster: a head with CPUs only and a second raylet that
declares one GPU (``--num-gpus 1``, no real GPU needed) and a custom resource. Deployed with
`raypipe start`, as a user deploys to a cluster."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import APPS, wait_for
from tests.runtime.raycluster import RAY, RAYPIPE, LocalCluster

APP = APPS / "placement"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster()
    try:
        c.start_head(num_cpus=2)
        c.add_node(num_cpus=1, resources={"gpu_node": 1}, num_gpus=2)
        yield c
    finally:
        c.stop()
        c.close()


def _nodes(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    out = cluster.run(RAY, "list", "nodes", "--detail", "--format=json", "--address",
                      cluster.api, timeout=60)
    return {n["node_id"]: n for n in json.loads(out.stdout) if n.get("state") == "ALIVE"}


def test_steps_run_where_their_resources_are(cluster: LocalCluster, tmp_path: Path) -> None:
    home = {"RAYPIPE_HOME": str(tmp_path)}
    port = str(cluster.serve_port)
    out = cluster.run(RAYPIPE, "start", str(APP), "--port", port, **home)
    assert out.returncode == 0, out.stdout + out.stderr
    url = f"http://127.0.0.1:{port}"
    # `raypipe flows` shows each step's options.
    flows = cluster.run(RAYPIPE, "flows", str(APP), "--format", "json")
    by_step = {s["name"]: s["ray"] for s in json.loads(flows.stdout)["steps"]}
    assert by_step["on-gpu"] == {"num_gpus": 1}
    assert by_step["on-tagged"] == {"resources": {"gpu_node": 1}, "max_batch": 4}
    assert by_step["gpu-pool"] == {"num_gpus": 1, "actors": 1,
                                   "batch": {"max_size": 4, "max_wait_s": 0.01}}

    n = 40
    assert httpx.post(f"{url}/go", json={"n": n}, timeout=60).status_code == 202

    def placed(step: str) -> dict[str, Any]:
        return httpx.get(f"{url}/placed/{step}", timeout=30).json()

    for step in ("on-gpu", "on-tagged", "anywhere", "gpu-pool"):
        wait_for(lambda s=step: sum(placed(s).get("nodes", {}).values()) == n,  # type: ignore[misc]
                 timeout=180, message=f"{step}: all {n} deliveries")
    nodes = _nodes(cluster)
    gpu_nodes = {i for i, node in nodes.items()
                 if node.get("resources_total", {}).get("GPU", 0) >= 1}
    assert len(gpu_nodes) == 1
    assert set(placed("on-gpu")["nodes"]) == gpu_nodes
    assert set(placed("on-tagged")["nodes"]) == gpu_nodes
    assert set(placed("gpu-pool")["nodes"]) == gpu_nodes
    # Ray hands each GPU step its device: the pool's one actor holds one of the raylet's two
    # GPUs for its life, so the GPU step's tasks get the other; the other steps get none.
    [held] = set(placed("gpu-pool")["cuda"].values())
    assert held in ("0", "1")
    assert set(placed("on-gpu")["cuda"].values()) == {"1" if held == "0" else "0"}
    assert set(placed("anywhere")["cuda"].values()) <= {None, ""}

    # The CLI finds the cluster from the deploy's record when RAY_ADDRESS names none; with
    # neither, it says how to name one instead of joining whatever Ray runs on the host.
    status = cluster.run(RAYPIPE, "status", str(APP), **home, RAY_ADDRESS="")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "version" in status.stdout and "in flight   0" in status.stdout
    lost = cluster.run(RAYPIPE, "status", str(APP), RAYPIPE_HOME=str(tmp_path / "none"),
                       RAY_ADDRESS="")
    assert lost.returncode == 1 and "RAY_ADDRESS" in lost.stdout + lost.stderr

    # A step that no node can run is refused at deploy, and the app keeps serving.
    greedy = tmp_path / "greedy"
    shutil.copytree(APP, greedy, ignore=shutil.ignore_patterns("__pycache__"))
    on_gpu = greedy / "steps" / "on_gpu_step.py"
    on_gpu.write_text(on_gpu.read_text().replace("num_gpus=1", "num_gpus=3"))
    refused = cluster.run(RAYPIPE, "start", str(greedy), "--port", port, **home)
    assert refused.returncode == 1
    said = refused.stderr + refused.stdout
    assert "'on-gpu'" in said and "GPU" in said, said
    assert httpx.get(f"{url}/_raypipe/health", timeout=30).status_code == 200

    stopped = cluster.run(RAYPIPE, "stop", str(APP), **home)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_deploys_ship_the_app_and_run_the_deployed_version(cluster: LocalCluster,
                                                           tmp_path: Path) -> None:
    """`raypipe start` from a copy of the app: the cluster runs the files as deployed (an edit
    on disk changes nothing until the next deploy, and the copy can go), and a redeploy's
    version is what new deliveries run."""
    home = {"RAYPIPE_HOME": str(tmp_path / "home")}
    port = str(cluster.serve_port)
    app = tmp_path / "versions"
    shutil.copytree(APPS / "versions", app, ignore=shutil.ignore_patterns("__pycache__"))
    work = app / "steps" / "work_step.py"
    url = f"http://127.0.0.1:{port}"

    def start() -> str:
        out = cluster.run(RAYPIPE, "start", str(app), "--port", port, **home)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout.split(" version ")[1].split()[0]

    def run_marks(n: int) -> dict[str, int]:
        run = httpx.post(f"{url}/runs", json={"n": n}, timeout=60).json()["run"]
        state = wait_for(lambda: (s := httpx.get(f"{url}/runs/{run}", timeout=30).json())
                         ["done"] == n and s, timeout=120, message="the run")
        return dict(state["by_mark"])

    first = start()
    assert run_marks(20) == {"v1": 20}
    work.write_text(work.read_text().replace('MARK = "v1"', 'MARK = "v2"'))
    assert run_marks(20) == {"v1": 20}  # on disk only: not deployed
    second = start()
    assert second != first
    assert run_marks(20) == {"v2": 20}
    status = cluster.run(RAYPIPE, "status", str(app), **home)
    assert f"version     {second}" in status.stdout, status.stdout
    shutil.rmtree(app / "steps")  # the client's copy is not what runs
    assert run_marks(5) == {"v2": 5}
    stopped = cluster.run(RAYPIPE, "stop", str(app), **home)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_each_shard_runs_its_tasks_on_its_share_of_the_nodes(cluster: LocalCluster,
                                                             tmp_path: Path) -> None:
    """``shards = 2`` on a cluster of two nodes that run tasks: each dispatcher shard's tasks
    go to its own share of the nodes (:func:`raypipe.shards.node_share`), whichever node its
    dispatcher runs on, so a node keeps the task workers of one shard, not of both."""
    from raypipe.shards import node_share

    app = APPS / "shard-nodes"
    home = {"RAYPIPE_HOME": str(tmp_path)}
    port = str(cluster.serve_port)
    out = cluster.run(RAYPIPE, "start", str(app), "--port", port, **home)
    assert out.returncode == 0, out.stdout + out.stderr
    url = f"http://127.0.0.1:{port}"
    n = 60
    assert httpx.post(f"{url}/go", json={"n": n}, timeout=60).status_code == 202
    placed = wait_for(lambda: (p := httpx.get(f"{url}/placed", timeout=30).json()).get("n") == n
                      and p, timeout=180, message=f"all {n} deliveries")
    runs_tasks = sorted(i for i, node in _nodes(cluster).items()
                        if node.get("resources_total", {}).get("CPU", 0) > 0)
    assert len(runs_tasks) == 2
    by_shard = placed["by_shard"]
    assert sorted(by_shard) == ["0", "1"]  # both shards ran some
    for shard, nodes in by_shard.items():
        assert set(nodes) == set(node_share(runs_tasks, int(shard), 2)), by_shard
    status = cluster.run(RAYPIPE, "status", str(app), **home)
    assert status.returncode == 0, status.stdout + status.stderr
    assert (f"task nodes  shard 0: {node_share(runs_tasks, 0, 2)[0][:12]}; "
            f"shard 1: {node_share(runs_tasks, 1, 2)[0][:12]}") in status.stdout, status.stdout
    stopped = cluster.run(RAYPIPE, "stop", str(app), **home)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
