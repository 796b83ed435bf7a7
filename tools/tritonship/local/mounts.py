"""The container's paths inside the native server's private mount namespace, never on the host.

In the SageMaker image the server sees the model archive at ``/opt/ml/model``, the target
models of a multi-model endpoint under ``/opt/ml/models/<hash>/model``, and (multi-model
mode) the dummy repository ``/tmp/sagemaker`` that the ``serve`` script creates. The native
engine runs tritonserver in a new user and mount namespace (:mod:`tritonship.local.confine`),
and there, before the server starts, :func:`apply` makes the same paths exist:

- a read-only bind mount of each host folder at its container path;
- each missing directory created on a tmpfs private to the namespace. Where ``/opt/ml`` or
  ``/tmp/sagemaker`` do not exist on the host, the nearest existing parent (``/opt``,
  ``/tmp``) is covered with a tmpfs on which each of its entries is recreated and bound
  back, so everything that was there stays reachable (a run folder or a pytest folder under
  ``/tmp``, a virtual environment under ``/opt``) while nothing is created on the host;
- each private directory (``/tmp/sagemaker``) empty, as in a fresh container: one that
  exists on the host is covered with an empty tmpfs.

Entries created on the host in a covered folder after the server started are not seen by
the server (its view of that folder was taken at start). ``unshare --mount`` makes every
mount private, so nothing here propagates back to the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# mount(2) flags (<linux/mount.h>).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
#: Flags a mount inherited from a more privileged user namespace keeps locked: a remount
#: that changes one of them fails with EPERM (mount_namespaces(7), "locked mounts"). Each
#: is read from statvfs(3)'s ``f_flag`` (``ST_*``; only ST_RELATIME's bit differs).
LOCKED_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}


@dataclass(frozen=True)
class PathPlan:
    """What the server sees: read-only binds of host folders, and private empty ``dirs``."""

    binds: tuple[tuple[Path, Path], ...] = ()  # (host source, container target)
    dirs: tuple[Path, ...] = ()

    def args(self) -> list[str]:
        """The plan as ``python -m tritonship.local.confine`` arguments."""
        words = [arg for directory in self.dirs for arg in ("--mkdir", str(directory))]
        for source, target in self.binds:
            words += ["--bind-ro", str(source), str(target)]
        return words

    @classmethod
    def from_args(cls, binds: Sequence[Sequence[str]], dirs: Sequence[str]) -> PathPlan:
        """The plan :meth:`args` wrote."""
        pairs = tuple((Path(source), Path(target)) for source, target in binds)
        return cls(pairs, tuple(Path(d) for d in dirs))


class MountError(OSError):
    """A mount(2) call failed."""


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """Mount ``source`` on ``target`` (the system call); :class:`MountError` names both."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]

    def encode(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data or None)):
        errno = ctypes.get_errno()
        raise MountError(errno, f"mount {source or fstype} on {target}: {os.strerror(errno)}")


def locked_flags(path: str | Path) -> int:
    """The flags of the mount holding ``path`` that a read-only remount must keep.

    A source without noatime or relatime is strictatime: without MS_STRICTATIME the kernel
    would default the remount to relatime, a change of a locked flag.
    """
    found = os.statvfs(path).f_flag
    flags = 0
    for st_flag, ms_flag in LOCKED_FLAGS.items():
        if found & st_flag:
            flags |= ms_flag
    return flags if flags & (MS_NOATIME | MS_RELATIME) else flags | MS_STRICTATIME


def bind_read_only(source: Path, target: Path) -> None:
    """Bind ``source`` at ``target`` (an existing directory), then make that bind read-only."""
    mount(str(source), str(target), None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(target)
    mount(None, str(target), None, flags)


@dataclass
class NamespaceView:
    """Creates directories in this mount namespace without touching the host's folders.

    ``private`` holds the directories that live on a tmpfs of this namespace (covered
    parents and what was created in them): only there may a directory be created directly.
    ``warnings`` collects the entries that could not be bound back.
    """

    private: set[Path] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def ensure_dir(self, path: Path) -> None:
        """Make ``path`` an existing directory here, creating nothing on the host."""
        path = Path(path)
        if not path.is_absolute():
            raise ValueError(f"{path} is not an absolute path")
        if path.is_dir():
            return
        missing = []
        anchor = path
        while not os.path.lexists(anchor):
            missing.append(anchor.name)
            anchor = anchor.parent
        if not anchor.is_dir():
            raise NotADirectoryError(f"{anchor} is not a directory: cannot create {path} in it")
        anchor = anchor.resolve()
        if anchor not in self.private:
            self.cover(anchor)
        for name in reversed(missing):
            anchor = anchor / name
            anchor.mkdir()
            self.private.add(anchor)

    def ensure_empty_dir(self, path: Path) -> None:
        """Make ``path`` an empty directory of this namespace (the host's stays as it is)."""
        path = Path(path)
        if path.is_dir() and path.resolve() not in self.private:
            mount("tmpfs", str(path), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
            self.private.add(path.resolve())
            return
        self.ensure_dir(path)

    def cover(self, directory: Path) -> None:
        """Cover ``directory`` with a private tmpfs that shows the same entries.

        The entries are listed through a descriptor opened before the tmpfs hides them;
        ``/proc/self/fd/N/<name>`` still reaches the covered ones, so each is bound back
        onto a placeholder of its kind (symbolic links are recreated).
        """
        mode = directory.stat().st_mode & 0o7777
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            names = os.listdir(fd)  # noqa: PTH208 - through the descriptor, before the cover
            mount("tmpfs", str(directory), "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o}")
            self.private.add(directory)
            for name in names:
                try:
                    _restore(fd, directory, name)
                except OSError as err:
                    self.warnings.append(f"{directory / name} is hidden from the server: {err}")
        finally:
            os.close(fd)


def _restore(fd: int, directory: Path, name: str) -> None:
    """Recreate the covered entry ``name`` of ``directory`` (open as ``fd``) on its tmpfs."""
    source = f"/proc/self/fd/{fd}/{name}"
    target = directory / name
    mode = os.lstat(name, dir_fd=fd).st_mode
    if stat.S_ISLNK(mode):
        target.symlink_to(os.readlink(name, dir_fd=fd))
        return
    if stat.S_ISDIR(mode):
        target.mkdir()
    else:
        target.touch()
    mount(source, str(target), None, MS_BIND | MS_REC)


def apply(plan: PathPlan) -> list[str]:
    """Set ``plan`` up in this (new) mount namespace; return the warnings to log.

    The private directories first, then the read-only binds, each target created when
    missing.
    """
    view = NamespaceView()
    for directory in plan.dirs:
        view.ensure_empty_dir(directory)
    for source, target in plan.binds:
        if not Path(source).is_dir():
            raise NotADirectoryError(f"{source} (to be seen at {target}) is not a directory")
        view.ensure_dir(target)
        bind_read_only(Path(source), target)
    return view.warnings


def apply_or_exit(plan: PathPlan) -> None:
    """:func:`apply` for the confinement wrapper: warnings and failure go to the server log."""
    try:
        warnings = apply(plan)
    except OSError as err:
        print(f"tritonship: cannot set up the container paths: {err}", file=sys.stderr)  # noqa: T201
        raise SystemExit(1) from err
    for warning in warnings:
        print(f"tritonship: {warning}", file=sys.stderr)  # noqa: T201


def probe_plan(scratch: Path) -> PathPlan:
    """A miniature of the engine's plan inside ``scratch`` (an empty host folder).

    ``scratch/source`` is bound read-only at ``scratch/missing/target``: the mount namespace
    must cover ``scratch`` with a tmpfs, restore ``source``, create the missing folders and
    remount a bind read-only, as for ``/opt/ml/model``.
    """
    source = scratch / "source"
    with contextlib.suppress(FileExistsError):
        source.mkdir()
    return PathPlan(((source, scratch / "missing" / "target"),), (scratch / "made",))


def check_probe(scratch: Path) -> None:
    """Raise unless :func:`apply` of :func:`probe_plan` did, in this namespace, what it should."""
    target = scratch / "missing" / "target"
    if not (target.is_dir() and (scratch / "source").is_dir() and (scratch / "made").is_dir()):
        raise MountError(0, "the probe's directories are missing after the mounts")
    if not os.statvfs(target).f_flag & os.ST_RDONLY:
        raise MountError(0, f"{target} is not read-only after the remount")
