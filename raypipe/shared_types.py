"""Aliases the state, streams and engine modules share (a leaf: it imports nothing of raypipe)."""

from __future__ import annotations

from typing import Any

__all__ = ["Groups", "Item", "Items", "Ops", "StreamItems"]

#: A state item as listed: ``{"id", "data"}``.
Item = dict[str, Any]
Items = list[Item]
#: Group names.
Groups = list[str]
#: State update ops: ``[{"type", "path", "value" | "by"}]``.
Ops = list[dict[str, Any]]
#: A stream group's items, each with its ``id`` inside.
StreamItems = list[Any]
