"""Unpack a ``model.tar.gz`` for a local run, refusing anything that could escape.

SageMaker extracts the archive to ``/opt/ml/model``; locally we extract it to a private
folder and serve that, so what runs is exactly what would be promoted. An archive is
refused (nothing is left behind) when a member has an absolute path, a ``..``
component, is a link, a device or a FIFO, or when it would unpack to more than
``MAX_UNPACKED_BYTES``.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tritonship.errors import TritonshipError
from tritonship.fileio import sha256_file

MAX_UNPACKED_BYTES = 20 * 1024**3


class UnsafeArchive(TritonshipError):
    """The archive holds a member that must not be extracted."""


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member is unsafe to extract, or None."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        return "has an absolute path"
    if ".." in path.parts:
        return "climbs out of the archive with '..'"
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return "is a device, FIFO or other special file"
    return None


def check_members(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Raise UnsafeArchive naming the first unsafe member, or when the total is too big."""
    for member in members:
        problem = member_problem(member)
        if problem:
            raise UnsafeArchive(
                f"{archive}: member {member.name!r} {problem}",
                hint="rebuild it with tritonship package",
            )
    total = sum(m.size for m in members if m.isfile())
    if total > MAX_UNPACKED_BYTES:
        raise UnsafeArchive(
            f"{archive}: would unpack to {total / 1024**3:.1f} GiB, "
            f"more than {MAX_UNPACKED_BYTES / 1024**3:.0f} GiB"
        )


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into a new folder ``dest`` (atomically: all or nothing)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            check_members(members, archive)
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
            try:
                tar.extractall(staging, members=members, filter="data")
                staging.replace(dest)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UnsafeArchive(f"{archive}: not a readable tar archive ({err})") from err
    return dest


@dataclass(frozen=True)
class Unpacked:
    """Where an archive was unpacked, its SHA-256, and how long the unpack took now.

    ``seconds`` is None when an earlier run had unpacked it already.
    """

    repository: Path
    sha256: str
    seconds: float | None


def unpack_timed(archive: Path, run_dir: Path) -> Unpacked:
    """Extract ``archive`` once per content hash under ``run_dir``, timing the extraction."""
    sha = sha256_file(archive)
    dest = run_dir / "archives" / sha[:16]
    if dest.is_dir():
        return Unpacked(dest, sha, None)
    started = time.monotonic()
    safe_extract(archive, dest)
    return Unpacked(dest, sha, time.monotonic() - started)
