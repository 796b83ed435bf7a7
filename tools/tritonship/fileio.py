"""Small file helpers: atomic writes and digests."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_writer(dest: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``dest``; rename it over ``dest`` only on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_writer(dest) as handle:
        handle.write(data)


def write_text_atomic(dest: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``dest`` atomically."""
    write_bytes_atomic(dest, text.encode("utf-8"))
