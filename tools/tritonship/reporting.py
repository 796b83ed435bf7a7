"""How long-running steps report progress: any callable that takes one line of text.

The command line passes a function that prints to stderr, tests pass ``list.append`` or
:func:`quiet`. Every layer types its ``say`` parameter with :class:`Reporter`.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Shows one progress message (the parameter is positional, so any name fits)."""

    def __call__(self, message: str, /) -> None:
        """Show ``message``."""


def quiet(message: str, /) -> None:
    """A reporter that says nothing."""
