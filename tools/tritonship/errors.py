"""The toolkit's one exception hierarchy: every error says what to do next."""

from __future__ import annotations


class TritonshipError(Exception):
    """An error the user can act on: ``str(err)`` is one line, ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


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
