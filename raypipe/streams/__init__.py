"""Streams: declared in ``*_stream.py`` files; items pushed to subscribers as they change."""

from raypipe.streams.config import StreamConfig

__all__ = ["StreamConfig"]
