"""The ids that name state and stream items (Ray-free): any text up to a length, control
characters included, which every backend stores and returns exactly; a lone surrogate (not
text: no encoder takes it) or an id past the length is refused with a clear error."""

from __future__ import annotations

from raypipe.errors import MAX_ID_LENGTH, InvalidIdError
from raypipe.jsonvalues import shown

__all__ = ["check_ids"]

def _check(value: object, what: str) -> None:
    if not isinstance(value, str):
        return  # the backends' own business (Motia code passes numbers)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(what, f"{len(value)} characters, over the {MAX_ID_LENGTH} an id "
                                   "may have")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidIdError(f"{what} {shown(value)!r}",
                                 "holds a lone surrogate (not text)") from None


def check_ids(**ids: object) -> None:
    """Refuse any of ``ids`` (``group=..., item=...``) that cannot be stored."""
    for what, value in ids.items():
        _check(value, what)
