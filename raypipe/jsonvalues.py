"""Plain JSON values: what raypipe stores, sends between steps and accepts over HTTP.

:func:`plain_json` turns pydantic models into their JSON form and refuses anything else that is
not JSON (so nothing's ``repr`` is ever stored); :func:`parse_json` reads a request body within
the limits of depth and text an app accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from raypipe.errors import JSONLimitError, NotJSONError

__all__ = ["JSONLimitError", "check_json", "dump_models", "parse_json", "plain_json"]

#: How deeply nested a value may be, by default.
MAX_DEPTH = 64


def shown(text: str) -> str:
    """``text`` safe to put in a message or a JSON answer: a lone surrogate (not text, so no
    encoder takes it) written as its escape, ``\\ud800``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(value: Any, max_depth: int) -> tuple[str, str] | None:
    """``(path, problem)`` of the first thing in ``value`` that is not plain JSON; the path
    is :func:`shown`, so that a message naming it can be sent."""
    found = _first_problem(value, max_depth)
    return None if found is None else (shown(found[0]), found[1])


def _first_problem(value: Any, max_depth: int) -> tuple[str, str] | None:
    # Iterative: a value nested past Python's recursion limit must not crash the check.
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 0, ())]
    while stack:
        item, level, path = stack.pop()
        if level > max_depth:
            return ".".join(path), f"nested deeper than {max_depth} levels"
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return ".".join(path), "a string holds a lone surrogate (not text)"
        elif item is None or isinstance(item, (bool, int)):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return ".".join(path), f"{item} is not a JSON number"
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    return ".".join(path), f"key {k!r} is not a string"
                stack.append((k, level + 1, (*path, k)))
                stack.append((v, level + 1, (*path, k)))
        elif isinstance(item, list):
            stack.extend((v, level + 1, (*path, str(i))) for i, v in enumerate(item))
        else:
            return ".".join(path), f"a {type(item).__name__} is not JSON"
    return None


_SCALARS = (str, int, float, bool, type(None))


def _fine(value: Any, depth: int) -> bool:
    """The fast check, without paths: every value a handler stores or sends goes through it.
    Recursion is bounded by ``depth`` (the depth limit)."""
    if isinstance(value, str):
        return value.isascii() or _is_text(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, _SCALARS):
        return True
    if depth <= 0:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _fine(k, 1) and _fine(v, depth - 1)
                   for k, v in value.items())
    if isinstance(value, list):
        return all(_fine(v, depth - 1) for v in value)
    return False


def check_json(value: Any, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` unchanged if it is plain JSON within ``max_depth``, else NotJSONError."""
    if _fine(value, max_depth):
        return value
    found = _problem(value, max_depth)
    if found:
        raise NotJSONError(what, *found)
    return value


def plain_json(value: Any, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Models (at any depth) as their JSON form, tuples as lists; NotJSONError for anything
    else that is not JSON (an object, NaN, a non-string key...)."""
    if _already_plain(value, max_depth):  # most values: one walk, nothing copied
        return value
    return check_json(dump_models(value), what, max_depth)


def _already_plain(value: Any, depth: int) -> bool:
    """Plain JSON as it is: dicts with string keys, lists, text, finite numbers."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _is_text(value)
    if kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth <= 0:
        return False
    # Loops, with text and whole numbers checked in place: asked of every write's value and
    # every message, in the worker, and about twice as fast as all() over a generator.
    if kind is dict:
        for k in value:
            if type(k) is not str or not (k.isascii() or _is_text(k)):
                return False
        children: Iterable[Any] = value.values()
    elif kind is list:
        children = value
    else:
        return False
    depth -= 1
    for v in children:
        leaf = type(v)
        if leaf is str:
            if not (v.isascii() or _is_text(v)):
                return False
        elif not (leaf is int or leaf is bool or v is None) and not _already_plain(v, depth):
            return False
    return True


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dump_models(value: Any) -> Any:
    """Models (at any depth) as their JSON form, tuples as lists, number and boolean keys as
    json.dumps writes them; everything else unchanged."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        # Keys as json.dumps writes them: numbers and booleans become strings; anything
        # else is left for the check to refuse.
        return {(json.dumps(k) if isinstance(k, (int, float)) and not isinstance(k, bool)
                 else ("true" if k else "false") if isinstance(k, bool) else k): dump_models(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump_models(v) for v in value]
    return value


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """A request body as JSON: ValueError if it is not JSON, JSONLimitError if it is nested
    past ``max_depth`` or holds a lone surrogate."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {max_depth} levels") from None
    found = None if _fine(data, max_depth) else _problem(data, max_depth)
    if found:
        where, problem = found
        raise JSONLimitError(f"{problem} (at {where or 'the top'})")
    return data
