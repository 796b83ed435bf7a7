"""The Makefile's run state: TRITONSHIP_RUN_DIR applies to make as to the CLI (``make -n``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(*args: str, **env: str) -> str:
    """What ``make -n`` would run (nothing runs), with ``env`` over a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRITONSHIP_")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=CHECKOUT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_bench_runs_and_reports_inside_the_run_folder(tmp_path: Path):
    plan = dry_run("bench", TRITONSHIP_RUN_DIR=str(tmp_path))
    assert f"TRITONSHIP_RUN_DIR={tmp_path}/bench-run" in plan
    assert f"--out {tmp_path}/bench" in plan
    assert "--results" not in plan and "docs/results" not in plan


def test_bench_writes_into_docs_results_only_when_asked():
    plan = dry_run("bench", "RESULTS=docs/results")
    assert "--out .tritonship/bench" in plan and "--results docs/results" in plan


def test_endpoint_tests_and_the_demo_keep_to_the_run_folder(tmp_path: Path):
    assert f"TRITONSHIP_RUN_DIR={tmp_path}/test-endpoint-run" in dry_run(
        "test-endpoint-local", TRITONSHIP_RUN_DIR=str(tmp_path)
    )
    demo = dry_run("demo", TRITONSHIP_RUN_DIR=str(tmp_path))
    assert f"tritonship.samples {tmp_path}/samples" in demo and ".tritonship/" not in demo
