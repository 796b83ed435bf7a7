"""NVIDIA's vendored tests stay unmodified, and our build of their repositories is test.sh's.

tests/qa/SOURCE.md lists each vendored file with its git blob id upstream; the files must
still hash to it. tests/support/nvidia_qa.py redoes test.sh's copies, removals and sed edits
in Python: here test.sh's own lines (taken from the vendored file, minus those touching
/opt/ml) run in bash on the same generated models, and both trees must be identical.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import nvidia_qa

SOURCE = nvidia_qa.QA / "SOURCE.md"
ROW = re.compile(r"^\| `(qa/[^`]+)` \| `([0-9a-f]{40})` \|$", re.MULTILINE)


def git_blob_id(path: Path) -> str:
    """``git hash-object PATH``."""
    content = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def test_every_vendored_file_is_byte_for_byte_upstream():
    listed = dict(ROW.findall(SOURCE.read_text(encoding="utf-8")))
    present = {
        str(p.relative_to(nvidia_qa.QA.parent))
        for p in nvidia_qa.QA.rglob("*")
        if p.is_file() and p.name != "SOURCE.md" and "__pycache__" not in p.parts
    }
    assert set(listed) == present, "SOURCE.md lists exactly the vendored files"
    for relative, blob in listed.items():
        assert git_blob_id(nvidia_qa.QA.parent / relative) == blob, f"{relative} was modified"


def script_lines(start: str, end: str) -> list[str]:
    """test.sh's lines from the one starting with ``start`` to the next one holding ``end``."""
    lines = (nvidia_qa.QA / "L0_sagemaker" / "test.sh").read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i, line in enumerate(lines) if i > first and end in line)
    return [line for line in lines[first : last + 1] if "/opt/ml" not in line]


def tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to run test.sh's lines")
def test_the_python_build_is_what_test_sh_builds(tmp_path: Path):
    data = nvidia_qa.generate(tmp_path / "data")
    script = [
        *script_lines("mkdir models && \\", 'sed -i "s/onnx_int32_int32_int32/sm_model/"'),
        *script_lines('MODEL1_PATH="models/', "mkdir -p ${ENSEMBLE_MODEL_PATH}/nop_"),
    ]
    assert len(script) > 20 and "MODEL2_PATH" in "\n".join(script)
    tests = nvidia_qa.copy_tests(tmp_path / "qa")
    env = {"DATADIR": str(data.root), "ENSEMBLEDIR": str(data.ensembles), "PATH": "/usr/bin:/bin"}
    bash = subprocess.run(
        ["bash", "-euc", "\n".join(script)],
        cwd=tests / "L0_sagemaker",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bash.returncode == 0, bash.stderr
    ours = nvidia_qa.build_multi_model(tmp_path / "ours", data)
    theirs = tests / "L0_sagemaker" / "models"
    assert tree(ours) == tree(theirs)
    assert (ours / nvidia_qa.MODEL1_PATH / "config.pbtxt").read_text().count("sm_mme_model_1")
    assert tree(nvidia_qa.build_single_model(tmp_path / "single", data)) == {
        key: value for key, value in tree(theirs).items() if key.startswith("sm_model")
    }
