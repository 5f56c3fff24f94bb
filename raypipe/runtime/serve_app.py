"""The import path of raypipe's Serve config files (``serve/*.yaml``)::

    applications:
      - name: raypipe-parallel-workflow
        route_prefix: /
        import_path: raypipe.runtime.serve_app:build
        args: {app_dir: examples/parallel-workflow, state: memory}

``serve run`` / ``serve deploy`` call :func:`build` on the cluster: it checks the app as every
deploy does (a failed check fails the build, and a running version keeps serving), ships
the files it finds at ``app_dir`` (on the node that builds: the rest load them from the
cluster), starts the app's actors or moves the running ones to this version, and returns its
ingress.
"""

from __future__ import annotations

from typing import Any

from raypipe.runtime import preflight, shipping
from raypipe.runtime.deploy import ingress, start_actors
from raypipe.runtime.spec import AppSpec

__all__ = ["build"]


def build(args: dict[str, Any]) -> Any:
    """``args``: ``app_dir`` (default ``.``) and any setting (``state``, ``name``, ...)."""
    settings = {k: v for k, v in args.items() if k != "app_dir"}
    spec = AppSpec.from_dir(args.get("app_dir", "."), **settings)
    # The route prefix is the config's, and Serve checks it: not ours to check here.
    app = preflight.load(spec)
    preflight.schedulable(app, spec)
    preflight.state_reachable(spec)
    preflight.same_state(spec)
    # Shipped from here: replicas, actors and tasks on other nodes load this version from
    # the cluster's store, not from a path that must exist on every node.
    spec = shipping.ship(spec)
    start_actors(spec)
    return ingress(spec)
