"""The runtime on Ray: actors, step tasks, the Serve ingress and deployment.

This package is the only place (with ``raypipe.http.ingress``) that imports Ray, so the step
model and the CLI's ``--help`` stay light. Its modules import Ray; this file does not.
"""

from raypipe.runtime.spec import AppSpec

__all__ = ["AppSpec"]
