"""The new fleet's startup and download budgets, checked against ``serve --archive``'s times.

Per variant, ``ContainerStartupHealthCheckTimeoutInSeconds`` and
``ModelDataDownloadTimeoutInSeconds`` (botocore: 60-3600 each) bound the container's start
and the archive's download; promote's preflight warns when one is below what the same
archive took here (unpack, load) times the documented margin. Stubber, no AWS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stubs import (
    Stubs,
    creating,
    describe,
    make_plan,
    missing,
    run,
)
from tritonship.artifact.package import PackageResult
from tritonship.artifact.timings import MARGIN, record_timing
from tritonship.errors import UsageError


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private run folder, where serve --archive records its measurements."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def test_the_variant_carries_both_budgets(packaged: PackageResult) -> None:
    plan = make_plan(packaged, startup_timeout=1200, download_timeout=300)
    variant = plan.config_request()["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 1200
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 300
    assert plan.provisioning == 600 + 1200 + 300
    assert make_plan(packaged).config_name != plan.config_name  # the budgets name the config


@pytest.mark.parametrize(("option", "value"), [("startup_timeout", 59), ("download_timeout", 3601)])
def test_a_budget_outside_sagemakers_range_is_refused(
    packaged: PackageResult, option: str, value: int
) -> None:
    with pytest.raises(UsageError, match="is not 60-3600 seconds"):
        make_plan(packaged, **{option: value})


def _created(stubs: Stubs, plan) -> None:
    """A first deployment, up to InService (no smoke test)."""
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)


def test_a_budget_below_the_margin_over_the_local_load_warns(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    record_timing(packaged.sha256, 2.0, 400.0, "native", run_dir)
    plan = make_plan(packaged, smoke_test=False)  # 900 s startup < 3 x 400 s
    _created(stubs, plan)
    run(stubs, plan)
    warning = next(line for line in stubs.said if line.startswith("WARNING: --startup-timeout"))
    assert f"below {MARGIN:g} x the 400.0 s the load took here (native)" in warning
    assert "give at least 1201" in warning
    assert "--download-timeout" not in warning  # 900 s covers 3 x 2 s


def test_budgets_that_cover_the_margin_say_so(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    record_timing(packaged.sha256, 2.0, 10.0, "native", run_dir)
    plan = make_plan(packaged, smoke_test=False)
    _created(stubs, plan)
    run(stubs, plan)
    assert any("cover 3 x the local unpack (2.0 s) and load (10.0 s)" in s for s in stubs.said)


def test_an_archive_never_served_here_says_how_to_measure_it(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    _created(stubs, plan)
    run(stubs, plan)
    assert any(f"tritonship serve --archive {packaged.archive}" in s for s in stubs.said)


def test_a_creation_waits_for_its_provisioning_budget(
    packaged: PackageResult, stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys, run_dir: Path
) -> None:
    from tritonship.cli import main

    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    argv = ["promote", "--endpoint", "demo", "--bucket", "models", "--role"]
    argv += [make_plan(packaged).options.role, "--archive", str(packaged.archive)]
    assert main([*argv, "--startup-timeout", "1800", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "ContainerStartupHealthCheckTimeoutInSeconds=1800, ModelDataDownloadTimeoutInSeconds=900"
        in out
    )
    # 600 s launch + 900 s download + 1800 s startup; then 10 min for SageMaker's rollback.
    assert (
        "creation time budget: 3300 s (55 min) of provisioning; promote waits up to 65 min" in out
    )
    assert "every 30 s, up to 65 min" in out
