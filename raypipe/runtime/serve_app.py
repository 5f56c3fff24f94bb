"""The import path of raypipe's Serve config files (``serve/*.yaml``)::

    applications:
      - name: raypipe-parallel-workflow
        route_prefix: /
        import_path: raypipe.runtime.serve_app:build
        args: {app_dir: examples/parallel-workflow, state: memory}

``serve run`` / ``serve deploy`` call :func:`build` on the cluster: it checks the app as every
deploy does (a failed check fails the build, and a running version keeps serving), starts
the app's actors or moves the running ones to this version, and returns its ingress.
"""

from __future__ import annotations

from typing import Any

from raypipe.runtime import preflight
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
    start_actors(spec)
    return ingress(spec)
