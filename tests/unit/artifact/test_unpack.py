"""Unpacking a model archive for a local run refuses anything that could escape."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tritonship.artifact.unpack import UnsafeArchive, safe_extract, unpack_timed


def make_archive(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


GOOD = [entry("dali/config.pbtxt"), entry("dali/1", tarfile.DIRTYPE), entry("dali/1/dali.py")]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (entry("/etc/cron.d/evil"), "absolute path"),
        (entry("../outside.txt"), "'..'"),
        (entry("dali/../../outside.txt"), "'..'"),
        (entry("dali/1/model.dali", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (entry("dali/1/hard", tarfile.LNKTYPE, "dali/config.pbtxt"), "is a link"),
        (entry("dali/fifo", tarfile.FIFOTYPE), "special file"),
        (entry("dali/dev", tarfile.CHRTYPE), "special file"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_extracted(tmp_path, bad, words):
    archive = make_archive(tmp_path / "model.tar.gz", [*GOOD, bad])
    dest = tmp_path / "out" / "repo"
    with pytest.raises(UnsafeArchive, match=words) as info:
        safe_extract(archive, dest)
    assert repr(bad.name) in str(info.value)
    assert not dest.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "outside.txt").exists()


def test_a_safe_archive_extracts_completely(tmp_path):
    archive = make_archive(tmp_path / "model.tar.gz", GOOD)
    dest = safe_extract(archive, tmp_path / "repo")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "dali",
        "dali/1",
        "dali/1/dali.py",
        "dali/config.pbtxt",
    ]


def test_not_an_archive_is_a_clear_error(tmp_path):
    bogus = tmp_path / "model.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(UnsafeArchive, match="not a readable tar archive"):
        safe_extract(bogus, tmp_path / "repo")


def test_unpacking_is_cached_by_content(tmp_path):
    archive = make_archive(tmp_path / "model.tar.gz", GOOD)
    first = unpack_timed(archive, tmp_path / "run")
    again = unpack_timed(archive, tmp_path / "run")
    assert again.repository == first.repository and again.sha256 == first.sha256
    assert first.seconds is not None and again.seconds is None, "unpacked once, then reused"


def test_an_archive_that_unpacks_too_big_is_refused_before_extracting(tmp_path, monkeypatch):
    from tritonship.artifact import unpack

    archive = make_archive(tmp_path / "model.tar.gz", GOOD)  # two 1-byte files
    monkeypatch.setattr(unpack, "MAX_UNPACKED_BYTES", 2)
    assert safe_extract(archive, tmp_path / "fits").is_dir()  # the limit itself is allowed
    monkeypatch.setattr(unpack, "MAX_UNPACKED_BYTES", 1)
    with pytest.raises(UnsafeArchive, match="would unpack to .* GiB, more than"):
        safe_extract(archive, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits", "model.tar.gz"]  # no staging
