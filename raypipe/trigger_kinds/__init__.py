"""The built-in trigger kinds, one module each (see :mod:`raypipe.trigger_kind`)."""
