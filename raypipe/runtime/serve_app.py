"""The import path of raypipe's Serve config files (``serve/*.yaml``)::

    applications:
      - name: raypipe-parallel-workflow
        route_prefix: /
        import_path: raypipe.runtime.serve_app:build
        args: {app_dir: examples/parallel-workflow, state: memory}

``serve run`` / ``serve deploy`` call :func:`build` on the cluster: it starts the app's actors
and returns its ingress.
"""

from __future__ import annotations

from typing import Any

from raypipe.runtime.deploy import ingress, start_actors
from raypipe.runtime.spec import AppSpec

__all__ = ["build"]


def build(args: dict[str, Any]) -> Any:
    """``args``: ``app_dir`` (default ``.``) and any setting (``state``, ``name``, ...)."""
    settings = {k: v for k, v in args.items() if k != "app_dir"}
    spec = AppSpec.from_dir(args.get("app_dir", "."), **settings)
    start_actors(spec)
    return ingress(spec)
