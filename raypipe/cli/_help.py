"""Help written as click writes it: arguments in capitals (``TOPIC [DATA]``), an option's value
by its kind (``INTEGER``, ``TEXT``, ``PATH``), flags bare. Typer 0.29 writes ``{topic}``,
``<str>`` and ``<bool>``, which read as unfilled placeholders."""

from __future__ import annotations

# Typer 0.29 vendors click: its parameters are typer._click's, not click's.
from typer import _click as click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["PlainHelpCommand", "PlainHelpGroup"]


class _Argument(TyperArgument):
    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


class _Option(TyperOption):
    def display_type_rich(self, ctx: click.Context) -> str | None:
        if self.metavar is not None or self.is_flag:
            return self.metavar
        label = self.display_type(ctx).strip("<>")
        return f"[{label}]" if "|" in label else _KINDS.get(label, label.upper())


#: Click's names for the kinds of value (Typer's are the Python types').
_KINDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH"}


def _plain(param: click.Parameter) -> None:
    if isinstance(param, TyperArgument):
        param.__class__ = _Argument
        if param.metavar is None and param.name:
            param.metavar = param.name.upper()
    elif isinstance(param, TyperOption):
        param.__class__ = _Option


class PlainHelpCommand(TyperCommand):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params


class PlainHelpGroup(TyperGroup):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params
