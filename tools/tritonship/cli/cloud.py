"""``package``, ``promote``, ``traffic`` and ``teardown``: model.tar.gz to a SageMaker endpoint."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tritonship.cli.common import (
    Subparsers,
    add_command,
    add_image_tag,
    add_quiet,
    add_repo,
    add_sagemaker_env,
    env_sources,
    say,
)
from tritonship.cli.traffic_loop import (
    add_promote_traffic,
    cmd_shadow_promote,
    promote_traffic,
    require_bucket_and_role,
)
from tritonship.errors import UsageError


def cmd_package(args: argparse.Namespace) -> int:
    """Validate, then write the deterministic archive(s) and their manifests."""
    from tritonship.sagemaker.settings import sagemaker_env

    # --multi-model shapes the archives; the endpoint's mode is promote's to set.
    sources = dataclasses.replace(env_sources(args), multi_model=False)
    options = {
        "image_tag": args.image_tag,
        "allow_random_weights": args.allow_random_weights,
        "progress": not args.quiet,
        "env": sagemaker_env(sources, args.repo),
    }
    if args.multi_model:
        results = _package_multi_model(args, options)
    else:
        if args.suffix:
            raise UsageError("--suffix names multi-model archives", hint="add --multi-model")
        from tritonship.artifact.package import package_repository
        from tritonship.paths import DEFAULT_ARCHIVE

        results = [package_repository(args.repo, args.out or DEFAULT_ARCHIVE, **options)]
    _report_packages(results)
    return 0


def _package_multi_model(args: argparse.Namespace, options: dict) -> list:
    """One archive per target model into --out (default dist/models/)."""
    from tritonship.artifact.multimodel import package_multi_model, stale_archives
    from tritonship.paths import DEFAULT_MODEL_DATA_DIR

    out_dir = args.out or DEFAULT_MODEL_DATA_DIR
    results = package_multi_model(args.repo, out_dir, suffix=args.suffix, **options)
    for path in stale_archives(out_dir, results):
        say(f"{path} was not written now: promote --archives {out_dir} would upload it too")
    return results


def _report_packages(results: list) -> None:
    """One line per archive, then what the manifests say about provenance."""
    first = results[0]
    if first.skipped:
        say(f"left out {len(first.skipped)}: {', '.join(first.skipped)}")
    image = first.manifest.image
    say(f"image {image.tag}: {image.chosen}")
    for result in results:
        target = result.manifest.target_model
        serves = f", target model {target}" if len(results) > 1 else ""
        mib = result.size / (1 << 20)
        print(f"{result.archive}: {mib:.1f} MiB, sha256 {result.sha256}{serves}")
        print(f"manifest: {result.manifest_path}")
    if first.manifest.build is None:
        say(f"NOTICE: {first.manifest.provenance}")
    elif first.manifest.weights_source == "random":
        say("NOTICE: random weights - a test deployment only; its predictions are meaningless")


def cmd_promote(args: argparse.Namespace) -> int:
    """Print the plan (--dry-run), or upload and deploy it with rollback."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.endpoints import Waiting
    from tritonship.cloud.planning import preview
    from tritonship.cloud.promote import apply, build_plan, summary_lines

    if args.shadow_promote:  # no archive: the deployed shadow becomes the live variant
        return cmd_shadow_promote(args)
    require_bucket_and_role(args)
    waiting = (
        Waiting.within(args.timeout, args.poll)
        if args.timeout is not None
        else Waiting.budgeted(args.poll)
    )
    archives = _archives(args)
    if args.image_tag is None:
        args.image_tag = _archive_tag(archives)
    plan = build_plan(_promote_options(args, archives), resolve_region())
    for note in plan.notes:
        say(note)
    if args.dry_run:
        changes, calls = preview(plan, make_clients(plan.region, attempts=1), waiting)
        print(f"plan for endpoint {plan.endpoint} in {plan.region} (dry run: no write call made)")
        print("\n".join(f"  {line}" for line in changes))
        print("  the model's Environment (and where each value comes from):")
        print("\n".join(f"    {line}" for line in _env_lines(plan)))
        for number, line in enumerate(calls, 1):
            print(f"{number:3d}. {line}")
        return 0
    result = apply(plan, make_clients(plan.region), waiting, progress=not args.quiet, say=say)
    print("\n".join(summary_lines(result, plan)))
    return 0


def _env_lines(plan) -> list[str]:  # noqa: ANN001 - a Plan, imported lazily
    """``KEY=VALUE  (origin)`` lines of the plan's environment."""
    from tritonship.sagemaker.settings import SageMakerEnv

    return SageMakerEnv(plan.env, plan.env_origins).describe() or ["(empty)"]


def _archives(args: argparse.Namespace) -> tuple[Path, ...]:
    """The archives to promote: --archive (repeatable) and the *.tar.gz of --archives DIR.

    Without either: dist/model.tar.gz, or with --multi-model every archive in dist/models/.
    """
    from tritonship.paths import DEFAULT_ARCHIVE, DEFAULT_MODEL_DATA_DIR

    given = list(args.archive or [])
    if not args.multi_model:
        _check_single_model(args, given)
        return tuple(given) or (DEFAULT_ARCHIVE,)
    folder = args.archives or (None if given else DEFAULT_MODEL_DATA_DIR)
    if folder is not None:
        found = sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
        if not found:
            raise UsageError(
                f"{folder} holds no *.tar.gz archive",
                hint="tritonship package --multi-model writes them there",
            )
        given += [path for path in found if path not in given]
    return tuple(given)


def _check_single_model(args: argparse.Namespace, given: list[Path]) -> None:
    """Refuse the multi-model options on a single-model endpoint."""
    what = None
    if args.archives is not None:
        what = "--archives is"
    elif len(given) > 1:
        what = "more than one --archive is"
    elif args.smoke_target_model:
        what = "--smoke-target-model is"
    if what:
        raise UsageError(f"{what} for a multi-model endpoint", hint="add --multi-model")


def _archive_tag(archives: tuple[Path, ...]) -> str:
    """The newest SageMaker tag that can serve every archive's backends; says which and why."""
    from tritonship.artifact.manifest import load_package
    from tritonship.sagemaker.images import newest_tag

    manifests = [load_package(archive) for archive in archives]
    choice = newest_tag({b for m in manifests for b in m.image.backends_needed})
    packaged = sorted({m.image.tag for m in manifests})
    also = "" if packaged == [choice.tag] else f"; validated for {', '.join(packaged)}"
    say(f"image {choice.tag}: {choice.reason}{also} (choose with --image-tag)")
    return choice.tag


def _promote_options(args: argparse.Namespace, archives: tuple[Path, ...]):  # noqa: ANN202
    """The promote options the command line asks for (a PromoteOptions, imported lazily)."""
    from tritonship.cloud.asynchronous import DEFAULT_BACKLOG_TARGET, AsyncOptions
    from tritonship.cloud.autoscaling import DEFAULT_TARGET, parse_bounds
    from tritonship.cloud.state import PromoteOptions

    asynchronous = None
    if args.asynchronous:
        if not args.output:
            raise UsageError("--async needs --output", hint="--output s3://BUCKET/PREFIX/")
        asynchronous = AsyncOptions(
            args.output,
            args.async_failure,
            args.success_topic,
            args.error_topic,
            args.max_concurrent,
        )
    elif args.output or args.async_failure:
        raise UsageError(
            "--output names where an asynchronous endpoint answers", hint="add --async"
        )
    default_target = DEFAULT_BACKLOG_TARGET if asynchronous else DEFAULT_TARGET
    return PromoteOptions(
        args.endpoint,
        args.bucket,
        args.role,
        archive=archives[0],
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        image_tag=args.image_tag,
        autoscale=(
            parse_bounds(args.autoscale, allow_zero=asynchronous is not None)
            if args.autoscale
            else None
        ),
        autoscale_target=args.autoscale_target or default_target,
        kms_key=args.kms_key,
        prefix=args.prefix,
        smoke_test=not args.skip_smoke_test,
        photo=args.photo,
        traffic=args.traffic,
        alarms=tuple(args.alarm),
        bake_minutes=args.bake,
        variant=args.variant,
        weight=args.weight,
        env_sources=dataclasses.replace(env_sources(args), multi_model=False),
        multi_model=args.multi_model,
        archives=archives,
        smoke_target_model=args.smoke_target_model,
        startup_timeout=args.startup_timeout,
        download_timeout=args.download_timeout,
        asynchronous=asynchronous,
        **promote_traffic(args),
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
    """``package [--repo DIR] [--out PATH] [--multi-model [--suffix S]] [--image-tag TAG] ...``."""
    package = add_command(sub, "package", cmd_package, "validate, then write dist/model.tar.gz")
    add_repo(package)
    package.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the archive (default: dist/model.tar.gz), or with --multi-model the folder "
        "of archives (default: dist/models/)",
    )
    package.add_argument(
        "--multi-model",
        action="store_true",
        help="one archive per top-level ensemble (and per model no ensemble uses), each a "
        "target model of a multi-model endpoint",
    )
    package.add_argument(
        "--suffix",
        default="",
        help="with --multi-model: added to each archive's name (<ensemble><suffix>.tar.gz), "
        "e.g. _v2 for a new version beside the old one (default: none)",
    )
    add_image_tag(
        package,
        "the SageMaker Triton image tag it targets, e.g. 24.09-py3 (default: the newest that "
        "can serve the repository)",
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

    promote = add_command(
        sub, "promote", cmd_promote, "upload the archive and deploy a SageMaker endpoint"
    )
    promote.add_argument(
        "--endpoint", required=True, metavar="NAME", help="the endpoint to create or update"
    )
    promote.add_argument(
        "--bucket", help="S3 bucket (must block public access); required but with --shadow-promote"
    )
    promote.add_argument(
        "--role", metavar="ARN", help="the endpoint's role; required but with --shadow-promote"
    )
    promote.add_argument(
        "--archive",
        type=Path,
        action="append",
        help="the archive (default: dist/model.tar.gz); with --multi-model repeatable",
    )
    promote.add_argument(
        "--archives",
        type=Path,
        metavar="DIR",
        help="with --multi-model: every *.tar.gz in DIR (default without --archive: "
        "dist/models/, where package --multi-model writes)",
    )
    promote.add_argument(
        "--instance-type",
        default=DEFAULT_INSTANCE_TYPE,
        help="the variant's instance type (default: %(default)s)",
    )
    promote.add_argument(
        "--instance-count",
        type=int,
        default=1,
        help="the variant's initial instance count (default: %(default)s)",
    )
    add_image_tag(
        promote,
        "the SageMaker Triton image tag to deploy, e.g. 24.09-py3 (default: the newest that "
        "can serve the archive's backends)",
    )
    add_sagemaker_env(promote, multi_model=False)
    promote.add_argument(
        "--multi-model",
        action="store_true",
        help="a multi-model endpoint: Mode=MultiModel, ModelDataUrl an S3 prefix holding "
        "every archive (a target model each); adding one later is an upload",
    )
    promote.add_argument(
        "--smoke-target-model",
        metavar="NAME",
        help="with --multi-model: the archive the smoke test invokes (default: the first)",
    )
    _add_promote_extras(promote)
    _add_guardrails(promote)
    _add_budgets(promote)
    _add_async(promote)
    add_promote_traffic(promote)


def _add_budgets(promote: argparse.ArgumentParser) -> None:
    """The new fleet's startup and download budgets."""
    from tritonship.cloud.guardrails import DEFAULT_DOWNLOAD_SECONDS, DEFAULT_STARTUP_SECONDS

    promote.add_argument(
        "--startup-timeout",
        type=int,
        default=DEFAULT_STARTUP_SECONDS,
        metavar="SECONDS",
        help="ContainerStartupHealthCheckTimeoutInSeconds: how long the container may take "
        "to answer /ping (60-3600; default %(default)s)",
    )
    promote.add_argument(
        "--download-timeout",
        type=int,
        default=DEFAULT_DOWNLOAD_SECONDS,
        metavar="SECONDS",
        help="ModelDataDownloadTimeoutInSeconds: how long the archive may take to download "
        "and unpack (60-3600; default %(default)s; not sent for --multi-model)",
    )


def _add_async(promote: argparse.ArgumentParser) -> None:
    """An asynchronous endpoint (AsyncInferenceConfig)."""
    group = promote.add_argument_group("asynchronous inference")
    group.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="an asynchronous endpoint: requests and answers through S3 (up to 1 GB, up to "
        "an hour each); --autoscale may then start at 0",
    )
    group.add_argument("--output", metavar="s3://BUCKET/PREFIX/", help="--async: S3OutputPath")
    group.add_argument(
        "--async-failure",
        metavar="s3://BUCKET/PREFIX/",
        help="--async: S3FailurePath (default: failures/ under --output)",
    )
    group.add_argument("--success-topic", metavar="SNS_ARN", help="--async: SNS on success")
    group.add_argument("--error-topic", metavar="SNS_ARN", help="--async: SNS on failure")
    group.add_argument(
        "--max-concurrent",
        type=int,
        metavar="N",
        help="--async: MaxConcurrentInvocationsPerInstance (1-1000; default: SageMaker's)",
    )


def _add_guardrails(promote: argparse.ArgumentParser) -> None:
    """Deployment guardrails and variants of ``promote``."""
    from tritonship.cloud.guardrails import ALL_AT_ONCE

    promote.add_argument(
        "--traffic",
        default=ALL_AT_ONCE,
        metavar="all-at-once|canary:PERCENT:WAIT|linear:PERCENT:WAIT",
        help="blue/green traffic shifting of an update, WAIT in seconds or 5m "
        "(default: %(default)s)",
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

    promote.add_argument(
        "--autoscale",
        metavar="MIN:MAX",
        help="Application Auto Scaling (with --async MIN may be 0: scale to zero)",
    )
    promote.add_argument(
        "--autoscale-target",
        type=float,
        default=None,
        help=f"invocations per instance per minute (default: {DEFAULT_TARGET:g}); with "
        "--async: queued requests per instance (default: 5)",
    )
    promote.add_argument("--kms-key", help="SSE-KMS key for the archive (default: SSE-S3)")
    promote.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="S3 key prefix: archives go to s3://BUCKET/PREFIX/ENDPOINT/ (default: %(default)s)",
    )
    promote.add_argument("--photo", type=Path, help="smoke-test photo (default: a cat)")
    promote.add_argument(
        "--skip-smoke-test", action="store_true", help="do not invoke the endpoint after deploying"
    )
    promote.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="minutes to wait (default: the plan's time budget, which the dry run shows)",
    )
    promote.add_argument(
        "--poll", type=float, default=30.0, help="seconds between polls (default: %(default)s)"
    )
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
    traffic.add_argument("--endpoint", required=True, metavar="NAME", help="the endpoint's name")
    traffic.add_argument(
        "weights",
        nargs="+",
        metavar="VARIANT=WEIGHT",
        help="relative weights: a=1 b=3 sends a quarter to a",
    )
    traffic.add_argument(
        "--timeout", type=float, default=60.0, help="minutes to wait (default: %(default)s)"
    )
    traffic.add_argument(
        "--poll", type=float, default=30.0, help="seconds between polls (default: %(default)s)"
    )
    add_quiet(traffic)


def add_teardown(sub: Subparsers) -> None:
    """``teardown --endpoint NAME [--delete-artifacts] [--bucket B] [--prefix P]``."""
    from tritonship.cloud.state import DEFAULT_PREFIX

    teardown = add_command(
        sub, "teardown", cmd_teardown, "delete an endpoint and what promote created"
    )
    teardown.add_argument(
        "--endpoint", required=True, metavar="NAME", help="the endpoint promote created"
    )
    teardown.add_argument(
        "--delete-artifacts", action="store_true", help="also delete the archives in S3"
    )
    teardown.add_argument(
        "--bucket",
        help="with --delete-artifacts: also sweep s3://BUCKET/PREFIX/ENDPOINT/ (for archives "
        "whose models are gone already)",
    )
    teardown.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="the S3 key prefix promote used (its --prefix) (default: %(default)s)",
    )


def register(sub: Subparsers) -> None:
    """The commands that ship the repository to SageMaker."""
    add_package(sub)
    add_promote(sub)
    add_traffic(sub)
    add_teardown(sub)
