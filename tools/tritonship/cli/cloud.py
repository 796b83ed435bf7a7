"""``package``, ``promote``, ``traffic`` and ``teardown``: model.tar.gz to a SageMaker endpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonship.cli.common import (
    Subparsers,
    add_command,
    add_quiet,
    add_repo,
    add_sagemaker_env,
    env_sources,
    say,
)


def cmd_package(args: argparse.Namespace) -> int:
    """Validate, then write the deterministic model.tar.gz and its manifest."""
    from tritonship.artifact.package import package_repository
    from tritonship.sagemaker.settings import sagemaker_env

    result = package_repository(
        args.repo,
        args.out,
        image_tag=args.image_tag,
        allow_random_weights=args.allow_random_weights,
        progress=not args.quiet,
        env=sagemaker_env(env_sources(args), args.repo),
    )
    if result.skipped:
        say(f"left out {len(result.skipped)}: {', '.join(result.skipped)}")
    image = result.manifest["image"]
    say(f"image {image['tag']}: {image['chosen']}")
    print(f"{result.archive}: {result.size / (1 << 20):.1f} MiB, sha256 {result.sha256}")
    print(f"manifest: {result.manifest_path}")
    if result.manifest["weights"]["source"] == "random":
        say("NOTICE: random weights - a test deployment only; its predictions are meaningless")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Print the plan (--dry-run), or upload and deploy it with rollback."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.endpoints import Waiting
    from tritonship.cloud.planning import preview
    from tritonship.cloud.promote import apply, build_plan, summary_lines

    waiting = Waiting.within(args.timeout, args.poll)
    if args.image_tag is None:
        args.image_tag = _archive_tag(args.archive)
    plan = build_plan(_promote_options(args), resolve_region())
    if args.dry_run:
        changes, calls = preview(plan, make_clients(plan.region, attempts=1), waiting)
        print(f"plan for endpoint {plan.endpoint} in {plan.region} (dry run: no write call made)")
        print("\n".join(f"  {line}" for line in changes))
        for number, line in enumerate(calls, 1):
            print(f"{number:3d}. {line}")
        return 0
    result = apply(plan, make_clients(plan.region), waiting, progress=not args.quiet, say=say)
    print("\n".join(summary_lines(result, plan)))
    return 0


def _archive_tag(archive: Path) -> str:
    """The newest SageMaker tag that can serve the archive's backends; says which and why."""
    from tritonship.artifact.package import load_package
    from tritonship.sagemaker.images import newest_tag

    manifest = load_package(archive)
    choice = newest_tag(manifest["image"]["backends_needed"])
    packaged = manifest["image"]["tag"]
    also = "" if packaged == choice.tag else f"; the archive was validated for {packaged}"
    say(f"image {choice.tag}: {choice.reason}{also} (choose with --image-tag)")
    return choice.tag


def _promote_options(args: argparse.Namespace):  # noqa: ANN202 - PromoteOptions, imported lazily
    """The promote options the command line asks for."""
    from tritonship.cloud.autoscaling import parse_bounds
    from tritonship.cloud.state import PromoteOptions

    return PromoteOptions(
        args.endpoint,
        args.bucket,
        args.role,
        archive=args.archive,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        image_tag=args.image_tag,
        autoscale=parse_bounds(args.autoscale) if args.autoscale else None,
        autoscale_target=args.autoscale_target,
        kms_key=args.kms_key,
        prefix=args.prefix,
        smoke_test=not args.skip_smoke_test,
        photo=args.photo,
        traffic=args.traffic,
        alarms=tuple(args.alarm),
        bake_minutes=args.bake,
        variant=args.variant,
        weight=args.weight,
        env_sources=env_sources(args),
    )


def cmd_teardown(args: argparse.Namespace) -> int:
    """Delete the endpoint and what promote created for it."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.teardown import summary_lines, teardown

    report = teardown(
        make_clients(resolve_region()),
        args.endpoint,
        delete_artifacts=args.delete_artifacts,
        bucket=args.bucket,
        prefix=args.prefix,
        say=say,
    )
    print("\n".join(summary_lines(report)))
    return 0


def add_package(sub: Subparsers) -> None:
    """``package [--repo DIR] [--out FILE] [--image-tag TAG] [--allow-random-weights]``."""
    from tritonship.paths import DEFAULT_ARCHIVE

    package = add_command(sub, "package", cmd_package, "validate, then write dist/model.tar.gz")
    add_repo(package)
    package.add_argument("--out", type=Path, default=DEFAULT_ARCHIVE)
    package.add_argument(
        "--image-tag",
        default=None,
        help="the image it targets (default: the newest that can serve the repository)",
    )
    package.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="package a random-weight build (a test deployment)",
    )
    add_sagemaker_env(package, multi_model=False)
    add_quiet(package, "no progress bar")


def add_promote(sub: Subparsers) -> None:
    """``promote --endpoint NAME --bucket B --role ARN [...]``."""
    from tritonship.cloud.state import DEFAULT_INSTANCE_TYPE
    from tritonship.paths import DEFAULT_ARCHIVE

    promote = add_command(
        sub, "promote", cmd_promote, "upload the archive and deploy a SageMaker endpoint"
    )
    promote.add_argument("--endpoint", required=True, metavar="NAME")
    promote.add_argument("--bucket", required=True, help="S3 bucket (must block public access)")
    promote.add_argument("--role", required=True, metavar="ARN", help="the endpoint's role")
    promote.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    promote.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    promote.add_argument("--instance-count", type=int, default=1)
    promote.add_argument(
        "--image-tag",
        default=None,
        help="default: the newest image that can serve the archive's backends",
    )
    add_sagemaker_env(promote, multi_model=False)
    _add_promote_extras(promote)
    _add_guardrails(promote)


def _add_guardrails(promote: argparse.ArgumentParser) -> None:
    """Deployment guardrails and variants of ``promote``."""
    from tritonship.cloud.deployment import ALL_AT_ONCE

    promote.add_argument(
        "--traffic",
        default=ALL_AT_ONCE,
        metavar="all-at-once|canary:PERCENT:WAIT|linear:PERCENT:WAIT",
        help="blue/green traffic shifting of an update (WAIT in seconds, or 5m)",
    )
    promote.add_argument(
        "--alarm",
        action="append",
        default=[],
        metavar="NAME",
        help="CloudWatch alarm that makes SageMaker roll the update back (repeatable)",
    )
    promote.add_argument(
        "--bake", type=float, default=0.0, metavar="MINUTES", help="baking period (0-60)"
    )
    promote.add_argument(
        "--variant",
        metavar="NAME",
        help="add (or replace) this production variant beside the serving ones",
    )
    promote.add_argument(
        "--weight", type=float, default=1.0, help="the variant's weight (default: 1)"
    )


def _add_promote_extras(promote: argparse.ArgumentParser) -> None:
    """Autoscaling, encryption, smoke test and waiting options of ``promote``."""
    from tritonship.cloud.autoscaling import DEFAULT_TARGET
    from tritonship.cloud.state import DEFAULT_PREFIX

    promote.add_argument("--autoscale", metavar="MIN:MAX", help="Application Auto Scaling")
    promote.add_argument(
        "--autoscale-target",
        type=float,
        default=DEFAULT_TARGET,
        help="invocations per instance per minute (default: %(default)s)",
    )
    promote.add_argument("--kms-key", help="SSE-KMS key for the archive (default: SSE-S3)")
    promote.add_argument("--prefix", default=DEFAULT_PREFIX, help="S3 key prefix")
    promote.add_argument("--photo", type=Path, help="smoke-test photo (default: a cat)")
    promote.add_argument("--skip-smoke-test", action="store_true")
    promote.add_argument("--timeout", type=float, default=60.0, help="minutes to wait")
    promote.add_argument("--poll", type=float, default=30.0, help="seconds between polls")
    promote.add_argument(
        "--dry-run", action="store_true", help="print what changes and the plan; no write call"
    )
    add_quiet(promote)


def cmd_traffic(args: argparse.Namespace) -> int:
    """Shift the endpoint's traffic between its variants and wait until it applies."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.endpoints import Waiting
    from tritonship.cloud.traffic import parse_weights, shift_traffic, summary_lines

    weights = parse_weights(args.weights)
    waiting = Waiting.within(args.timeout, args.poll)
    clients = make_clients(resolve_region())
    final = shift_traffic(clients, args.endpoint, weights, waiting, not args.quiet, say)
    print("\n".join(summary_lines(args.endpoint, final)))
    return 0


def add_traffic(sub: Subparsers) -> None:
    """``traffic --endpoint NAME VARIANT=WEIGHT ...``."""
    traffic = add_command(
        sub, "traffic", cmd_traffic, "shift an endpoint's traffic between its variants"
    )
    traffic.add_argument("--endpoint", required=True, metavar="NAME")
    traffic.add_argument("weights", nargs="+", metavar="VARIANT=WEIGHT")
    traffic.add_argument("--timeout", type=float, default=60.0, help="minutes to wait")
    traffic.add_argument("--poll", type=float, default=30.0, help="seconds between polls")
    add_quiet(traffic)


def add_teardown(sub: Subparsers) -> None:
    """``teardown --endpoint NAME [--delete-artifacts] [--bucket B] [--prefix P]``."""
    from tritonship.cloud.state import DEFAULT_PREFIX

    teardown = add_command(
        sub, "teardown", cmd_teardown, "delete an endpoint and what promote created"
    )
    teardown.add_argument("--endpoint", required=True, metavar="NAME")
    teardown.add_argument(
        "--delete-artifacts", action="store_true", help="also delete the archives in S3"
    )
    teardown.add_argument("--bucket", help="with --delete-artifacts: also sweep the prefix")
    teardown.add_argument("--prefix", default=DEFAULT_PREFIX)


def register(sub: Subparsers) -> None:
    """The commands that ship the repository to SageMaker."""
    add_package(sub)
    add_promote(sub)
    add_traffic(sub)
    add_teardown(sub)
