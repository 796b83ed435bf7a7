"""NVIDIA's SageMaker acceptance tests (tests/qa, vendored unmodified): their repositories.

``qa/L0_sagemaker/test.sh`` copies models out of ``/data/inferenceserver/<version>/``, which
NVIDIA's CI fills with ``qa/common/gen_qa_*`` generators. :func:`generate` runs the vendored
generators, unmodified, into a folder of ours (the DATADIR); :func:`build_models` then does
test.sh's copies, removals and ``sed`` edits in Python, into a work folder. Nothing is
written into the checkout. tests/qa/SOURCE.md names the upstream commit of every file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

QA = ROOT / "tests" / "qa"
#: test.sh: UNIT_TEST_COUNT and MULTI_MODEL_UNIT_TEST_COUNT.
UNIT_TEST_COUNT = 10
MULTI_MODEL_UNIT_TEST_COUNT = 7
#: The target models test.sh places under /opt/ml/models (sagemaker_multi_model_test.py).
MODEL1_PATH = "123456789abcdefghi/model"
MODEL2_PATH = "987654321ihgfedcba/model"
ENSEMBLE_MODEL_PATH = "123456789ensemble/model"
ENSEMBLE_COMPONENT = "python_float32_float32_float32"


@dataclass(frozen=True)
class DataDir:
    """test.sh's ``DATADIR`` and ``ENSEMBLEDIR``, generated, and how long that took."""

    root: Path
    seconds: float

    @property
    def models(self) -> Path:
        """``$DATADIR/qa_model_repository``."""
        return self.root / "qa_model_repository"

    @property
    def identity(self) -> Path:
        """``$DATADIR/qa_identity_model_repository``."""
        return self.root / "qa_identity_model_repository"

    @property
    def ensembles(self) -> Path:
        """``$ENSEMBLEDIR``: ``$DATADIR/qa_ensemble_model_repository/qa_model_repository``."""
        return self.root / "qa_ensemble_model_repository" / "qa_model_repository"


def _generator(script: str, *args: str) -> None:
    """Run a vendored generator (qa/common, unmodified) with this interpreter."""
    command = [sys.executable, str(QA / "common" / script), *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # nothing written into the checkout
    result = subprocess.run(
        command,
        cwd=QA / "common",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def generate(root: Path) -> DataDir:
    """The model folders test.sh copies from, made by NVIDIA's generators into ``root``.

    ONNX add/sub models (``onnx_int32_int32_int32``), ONNX identity models
    (``onnx_zero_1_float32``) and the ensemble utilities (``nop_TYPE_FP32_-1``, an
    ``identity`` backend model), as NVIDIA's ``gen_qa_model_repository`` makes them.
    """
    started = time.monotonic()
    data = DataDir(root, 0.0)
    _generator("gen_qa_models.py", "--onnx", "--models_dir", str(data.models))
    _generator("gen_qa_identity_models.py", "--onnx", "--models_dir", str(data.identity))
    _generator("gen_qa_models.py", "--ensemble", "--models_dir", str(data.ensembles))
    return DataDir(root, time.monotonic() - started)


def sed(path: Path, pattern: str, replacement: str, first_line_only: bool = False) -> None:
    """``sed -i "s/PATTERN/REPLACEMENT/"``: the first match on each line.

    ``first_line_only``: ``sed -i "0,/PATTERN/{s/PATTERN/REPLACEMENT/}"``, only the first
    line that matches.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    done = False
    for number, line in enumerate(lines):
        if done or not re.search(pattern, line):
            continue
        lines[number] = re.sub(pattern, lambda _: replacement, line, count=1)
        done = first_line_only
    path.write_text("".join(lines), encoding="utf-8")


def _append(path: Path, line: str) -> None:
    """``echo "LINE" >> PATH``."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _copy_contents(source: Path, target: Path) -> None:
    """``cp -r SOURCE/* TARGET``."""
    shutil.copytree(source, target, dirs_exist_ok=True)


def build_single_model(work: Path, data: DataDir) -> Path:
    """test.sh's ``models`` folder during its single-model part: ``sm_model``.

    test.sh: "mkdir models && cp -r .../onnx_int32_int32_int32 models/sm_model", without
    versions 2 and 3, renamed with sed. The ``mock_llm`` model it also copies serves only
    the generate tests (not vendored here) and is deleted before the multi-model part.
    """
    models = work / "models"
    sm_model = models / "sm_model"
    shutil.copytree(data.models / "onnx_int32_int32_int32", sm_model)
    shutil.rmtree(sm_model / "2")
    shutil.rmtree(sm_model / "3")
    sed(sm_model / "config.pbtxt", "onnx_int32_int32_int32", "sm_model")
    return models


def build_multi_model(work: Path, data: DataDir) -> Path:
    """test.sh's ``models`` folder in its multi-model part, linked at ``/opt/ml/models``.

    ``sm_model`` and three target models under ``<hash>/model`` ("MME begin").
    """
    models = build_single_model(work, data)
    _mme_models(models, data)
    return models


def _mme_models(models: Path, data: DataDir) -> None:
    """test.sh between "MME begin" and "Start server with 'serve' script" (MME)."""
    model1, model2 = models / MODEL1_PATH, models / MODEL2_PATH
    _copy_contents(data.models / "onnx_int32_int32_int32", model1)
    shutil.rmtree(model1 / "2")
    shutil.rmtree(model1 / "3")
    sed(model1 / "config.pbtxt", "onnx_int32_int32_int32", "sm_mme_model_1")
    _copy_contents(data.identity / "onnx_zero_1_float32", model2)
    sed(model2 / "config.pbtxt", "onnx_zero_1_float32", "sm_mme_model_2")
    ensemble = models / ENSEMBLE_MODEL_PATH
    python_models = QA / "python_models"
    component = ensemble / ENSEMBLE_COMPONENT
    (component / "1").mkdir(parents=True)
    shutil.copy(python_models / "add_sub" / "model.py", component / "1")
    shutil.copy(python_models / "add_sub" / "config.pbtxt", component)
    sed(component / "config.pbtxt", "label_filename:.*", "")
    _append(component / "config.pbtxt", "max_batch_size: 64")
    fan = ensemble / f"fan_{ENSEMBLE_COMPONENT}"
    (fan / "1").mkdir(parents=True)
    shutil.copy(python_models / "add_sub" / "model.py", fan / "1")
    shutil.copy(python_models / "fan_add_sub" / "config.pbtxt", fan)
    config = fan / "config.pbtxt"
    sed(config, "label_filename:.*", "")
    sed(config, 'model_name: "ENSEMBLE_MODEL_NAME"', f'model_name: "{ENSEMBLE_COMPONENT}"')
    sed(config, "name:.*", f'name: "fan_{ENSEMBLE_COMPONENT}"', first_line_only=True)
    _append(config, "max_batch_size: 64")
    shutil.copytree(data.ensembles / "nop_TYPE_FP32_-1", ensemble / "nop_TYPE_FP32_-1")
    (ensemble / "nop_TYPE_FP32_-1" / "1").mkdir(parents=True, exist_ok=True)


def copy_tests(target: Path) -> Path:
    """A private copy of tests/qa (the tests write ``test_results.txt`` into their cwd)."""
    shutil.copytree(QA, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
