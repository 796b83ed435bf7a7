"""tritonship package: deterministic bytes, exactly the repository's files, nothing secret."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from tritonship.artifact.manifest import load_package, manifest_path_for
from tritonship.artifact.package import PackageError, PackageResult, package_repository
from tritonship.cli import main
from tritonship.errors import ChecksumError
from tritonship.fileio import sha256_file
from tritonship.repository.config import load_repository
from tritonship.repository.validate import validate_repository

PLANTED = {
    ".env": "AWS_SECRET=planted\n",
    ".aws/credentials": "[default]\nplanted = yes\n",
    "ensemble_dali_inception/1/.gitkeep": "",
    "dali/1/__pycache__/dali.cpython-311.pyc": "planted",
    "dali/1/dali.py~": "editor backup",
    "dali/1/.dali.py.swp": "vim swap",
    "inception_graphdef/credentials": "planted",
    "inception_graphdef/notes.bak": "planted",
    "dali/1/tls.pem": "planted",
    "dali/1/server.key": "planted",
}


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.getmembers()


def repository_files(repo: Path) -> set[str]:
    """The repository's files as git would ship them: no dotfiles, no caches."""
    found = set()
    for path in repo.rglob("*"):
        rel = path.relative_to(repo)
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            found.add(rel.as_posix())
    return found


def test_cli_package_gives_identical_bytes(
    packaged: PackageResult, staged_repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "again" / "model.tar.gz"
    code = main(
        [
            "package",
            "--repo",
            str(staged_repository),
            "--out",
            str(out),
            "--allow-random-weights",
            "--quiet",
        ]
    )
    assert code == 0
    assert out.read_bytes() == packaged.archive.read_bytes()
    assert manifest_path_for(out).read_bytes() == packaged.manifest_path.read_bytes()
    printed = capsys.readouterr()
    assert packaged.sha256 in printed.out and "MiB" in printed.out
    assert "random weights" in printed.err


def test_gzip_and_tar_headers_are_fixed(packaged: PackageResult) -> None:
    head = packaged.archive.read_bytes()[:10]
    assert head[3] == 0, "no FNAME (or other) flag in the gzip header"
    assert head[4:8] == b"\0\0\0\0", "gzip mtime is 0"
    infos = members(packaged.archive)
    names = [info.name for info in infos]
    assert names == sorted(names, key=lambda name: name.split("/"))
    for info in infos:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        assert info.mode == (0o755 if info.isdir() else 0o644)
        assert info.isdir() or info.isfile()
    assert "ensemble_dali_inception/1" in [i.name for i in infos if i.isdir()]
    assert packaged.sha256 == sha256_file(packaged.archive)
    assert packaged.size == packaged.archive.stat().st_size


def test_extracted_archive_validates_and_holds_exactly_the_repository(
    packaged: PackageResult, staged_repository: Path, tmp_path: Path
) -> None:
    with tarfile.open(packaged.archive, "r:gz") as tar:
        tar.extractall(tmp_path / "opt-ml-model", filter="data")
    extracted = tmp_path / "opt-ml-model"
    assert not (extracted / "config.pbtxt").exists(), "model folders sit at the archive root"
    assert (extracted / "ensemble_dali_inception" / "1").is_dir()
    assert validate_repository(load_repository(extracted), image_tag="24.09-py3") == []
    assert repository_files(extracted) == repository_files(staged_repository)
    for rel, digest in packaged.manifest.files.items():
        assert sha256_file(extracted / rel) == digest == sha256_file(staged_repository / rel)


def test_manifest_records_provenance(packaged: PackageResult) -> None:
    manifest = json.loads(packaged.manifest_path.read_text())
    assert manifest["archive"] == {
        "name": "model.tar.gz",
        "sha256": packaged.sha256,
        "bytes": packaged.size,
    }
    assert manifest["weights"]["source"] == "random"
    assert manifest["dali"]["version"]
    assert manifest["image"]["tag"] == "24.09-py3"
    assert {"dali", "tensorflow", "ensemble"} <= set(manifest["image"]["backends_needed"])
    assert manifest["default_model"] == "ensemble_dali_inception"
    assert load_package(packaged.archive).to_json() == manifest


def test_planted_secrets_and_clutter_never_get_in(repo_copy: Path, tmp_path: Path) -> None:
    for rel, text in PLANTED.items():
        (repo_copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo_copy / rel).write_text(text)
    result = package_repository(
        repo_copy, tmp_path / "model.tar.gz", allow_random_weights=True, progress=False
    )
    names = {info.name for info in members(result.archive)}
    assert not any(name.endswith(tuple(PLANTED)) for name in names)
    assert not any("/." in f"/{name}" or "__pycache__" in name for name in names)
    assert {".env", ".aws", "inception_graphdef/credentials"} <= set(result.skipped)
    assert "planted" not in result.manifest_path.read_text()


def test_text_that_looks_like_a_credential_is_refused(repo_copy: Path, tmp_path: Path) -> None:
    (repo_copy / "dali" / "notes.txt").write_text("aws_secret_access_key = abc\n")
    with pytest.raises(PackageError, match="credential"):
        package_repository(repo_copy, tmp_path / "model.tar.gz", allow_random_weights=True)
    assert not (tmp_path / "model.tar.gz").exists()


@pytest.mark.parametrize(
    "secret",
    [
        "key = AKIA" + "ABCDEFGHIJKLMNOP\n",  # split: no key id in this file
        "token: ASIA" + "QRSTUVWXYZ234567\n",
        "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIE\n",
        "-----BEGIN OPENSSH PRIVATE" + " KEY-----\n",
        "-----BEGIN PRIVATE" + " KEY-----\n",
    ],
)
def test_every_kind_of_credential_is_refused(repo_copy: Path, tmp_path: Path, secret: str):
    (repo_copy / "inception_graphdef" / "readme.txt").write_text(secret)
    with pytest.raises(PackageError, match="readme.txt looks like it holds a credential"):
        package_repository(repo_copy, tmp_path / "model.tar.gz", allow_random_weights=True)


@pytest.mark.parametrize(
    "harmless",
    ["AKIA" + "ABCDEFGHIJKLMNO\n", "xAKIA" + "ABCDEFGHIJKLMNOP\n", "-----BEGIN PUBLIC KEY-----\n"],
)
def test_text_that_only_resembles_a_credential_is_packaged(
    repo_copy: Path, tmp_path: Path, harmless: str
):
    (repo_copy / "inception_graphdef" / "readme.txt").write_text(harmless)
    result = package_repository(
        repo_copy, tmp_path / "model.tar.gz", allow_random_weights=True, progress=False
    )
    assert "inception_graphdef/readme.txt" in result.manifest.files


def test_random_weights_need_the_flag(staged_repository: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="--allow-random-weights"):
        package_repository(staged_repository, tmp_path / "model.tar.gz")
    assert not any(tmp_path.iterdir())


def test_validation_findings_are_refused(repo_copy: Path, tmp_path: Path) -> None:
    (repo_copy / "ensemble_dali_inception" / "1" / ".gitkeep").unlink()
    (repo_copy / "ensemble_dali_inception" / "1").rmdir()
    code = main(
        [
            "package",
            "--repo",
            str(repo_copy),
            "--out",
            str(tmp_path / "m.tar.gz"),
            "--allow-random-weights",
        ]
    )
    assert code == 1
    assert not (tmp_path / "m.tar.gz").exists()


def test_an_image_without_tensorflow_is_refused(staged_repository: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="tensorflow"):
        package_repository(
            staged_repository,
            tmp_path / "m.tar.gz",
            image_tag="25.04-py3",
            allow_random_weights=True,
        )


def test_files_changed_since_the_build_are_refused(repo_copy: Path, tmp_path: Path) -> None:
    labels = repo_copy / "inception_graphdef" / "inception_labels.txt"
    labels.write_text(labels.read_text().replace("tench", "tinca", 1))
    with pytest.raises(PackageError, match="changed since the build"):
        package_repository(repo_copy, tmp_path / "m.tar.gz", allow_random_weights=True)


def test_an_archive_inside_the_repository_is_refused(staged_repository: Path) -> None:
    with pytest.raises(PackageError, match="inside the repository"):
        package_repository(staged_repository, staged_repository / "model.tar.gz")


def test_symlinks_are_refused(repo_copy: Path, tmp_path: Path) -> None:
    (repo_copy / "dali" / "hostname").symlink_to("/etc/hostname")
    with pytest.raises(PackageError, match="symbolic link"):
        package_repository(repo_copy, tmp_path / "m.tar.gz", allow_random_weights=True)


def test_a_tampered_archive_is_not_promoted(packaged: PackageResult, tmp_path: Path) -> None:
    copy = tmp_path / "model.tar.gz"
    data = bytearray(packaged.archive.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    manifest_path_for(copy).write_bytes(packaged.manifest_path.read_bytes())
    assert hashlib.sha256(data).hexdigest() != packaged.sha256
    with pytest.raises(ChecksumError, match="does not match"):
        load_package(copy)
