"""``python -m raypipe.cli``: the ``raypipe`` command."""

from raypipe.cli import main

main()
