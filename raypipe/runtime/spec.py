from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from raypipe.settings import Settings, load_settings


@dataclass(frozen=True)
class AppSpec:
    """What every actor, replica and task needs to load the same app: a Ray task argument."""

    root: str
    settings: Settings

    @classmethod
    def from_dir(cls, app_dir: str | Path, **overrides: object) -> AppSpec:
        root = Path(app_dir).resolve()
        return cls(str(root), load_settings(root, overrides))

    @property
    def namespace(self) -> str:
        return self.settings.namespace
