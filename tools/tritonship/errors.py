"""The toolkit's one exception hierarchy: every error says what, where, and what to do next.

A :class:`TritonshipError` carries its parts as fields: ``what`` went wrong (one line),
``where`` (a file, and its line when known), the ``hint`` that fixes it, and ``details``
shown below (validation findings, a server's last log lines). :func:`render` is the one
place they become text, for ``str(err)``, the command line and the logs alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Where:
    """A place in a file: ``path:line`` (which editors open), or the path alone."""

    path: Path | str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


class TritonshipError(Exception):
    """An error the user can act on: ``what`` is one line, ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        hint: str | None = None,
        *,
        where: Where | None = None,
        details: str = "",
    ) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint
        self.where = where
        self.details = details

    def __str__(self) -> str:
        return render(self)


def render(err: BaseException, unexpected_hint: str | None = None) -> str:
    """What the user reads about ``err``: ``where: what (hint)``, then the details below.

    Any other exception (a bug, or a library's error that was not translated) reads as its
    type and message, with ``unexpected_hint`` (e.g. how to see the traceback).
    """
    if isinstance(err, TritonshipError):
        what, hint, details = err.what, err.hint, err.details
        where = f"{err.where}: " if err.where else ""
    else:
        text = str(err).strip()
        what = f"{type(err).__name__}: {text}" if text else type(err).__name__
        hint, details, where = unexpected_hint, "", ""
    first, _, rest = what.partition("\n")  # a message that spans lines keeps its hint up top
    notes = "\n".join(getattr(err, "__notes__", ()))  # e.g. a clean-up that failed after it
    below = "\n".join(part for part in (rest, details, notes) if part)
    head = f"{where}{first} ({hint})" if hint else f"{where}{first}"
    return f"{head}\n{below}" if below else head


class UsageError(TritonshipError):
    """The command line or its inputs are wrong (exit code 2)."""

    exit_code = 2


class NetworkError(TritonshipError):
    """A download or remote call could not reach its host."""


class ChecksumError(TritonshipError):
    """Downloaded or built bytes do not have the expected digest."""


class ContractError(TritonshipError):
    """A built artifact does not honour the repository's tensor contract."""


class TritonshipTimeout(TritonshipError, TimeoutError):
    """A wait ran past its deadline."""


class DeployError(TritonshipError):
    """A promote failed; the message says why and what was rolled back."""
