"""Deploy an app onto the cluster this job runs on, and return (the app keeps running).

    ray job submit --working-dir . -- python jobs/deploy.py examples/parallel-workflow \\
        [--state redis://HOST:6379/0] [--port 3111]
"""

from __future__ import annotations

import argparse

from raypipe.runtime.deploy import connect, deploy
from raypipe.runtime.spec import AppSpec


def main() -> None:
    p = argparse.ArgumentParser(description="Deploy a raypipe app onto this Ray cluster.")
    p.add_argument("app_dir", help="the app directory (inside the job's working dir)")
    p.add_argument("--state", help="memory (default) or a redis:// URL")
    p.add_argument("--port", type=int, help="Serve's HTTP port (default 3111)")
    p.add_argument("--host", default="0.0.0.0", help="Serve's HTTP host")
    p.add_argument("--change-state", action="store_true",
                   help="move a running app to the state backend given")
    args = p.parse_args()
    spec = AppSpec.from_dir(args.app_dir, state=args.state, port=args.port, host=args.host)
    connect(namespace=spec.namespace)
    deployment = deploy(spec, ship=True, change_state=args.change_state)
    print(f"deployed {spec.settings.name!r}: {deployment.url} (namespace {spec.namespace})")


if __name__ == "__main__":
    main()
