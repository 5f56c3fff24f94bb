"""State: groups of JSON items with atomic per-item updates, behind one backend interface."""

from raypipe.state.backend import StateBackend, make_backend

__all__ = ["StateBackend", "make_backend"]
