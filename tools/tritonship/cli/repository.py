"""``tritonship build`` and ``validate``: the model repository."""

from __future__ import annotations

import argparse
import sys

from tritonship.cli.common import Subparsers, add_command, add_quiet, add_repo, say

RANDOM_WEIGHTS_NOTICE = (
    "NOTICE: random weights - the labels the model predicts are meaningless; "
    "build with --weights official for real predictions"
)


def cmd_build(args: argparse.Namespace) -> int:
    """Build every artifact of the repository."""
    from tritonship.repository.build import build_repository

    manifest = build_repository(
        args.repo, weights=args.weights, device=args.device, progress=not args.quiet, say=say
    )
    weights = manifest["weights"]
    print(
        f"built {args.repo}: {weights['source']} weights (sha256 {weights['graph_sha256'][:12]}), "
        f"DALI {manifest['dali']['build_dali_version']} {manifest['dali']['mode']}, "
        f"target {manifest['device_target']}, {len(manifest['files'])} files, "
        f"{manifest['seconds']} s"
    )
    if weights["source"] == "random":
        say(RANDOM_WEIGHTS_NOTICE)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate the repository; exit 1 with one line per finding."""
    from tritonship.repository.validate import (
        format_findings,
        load_repository,
        summary,
        validate_repository,
    )

    findings = validate_repository(args.repo, image_tag=args.image)
    if findings:
        print(format_findings(findings))
        print(f"{len(findings)} finding(s) in {args.repo}", file=sys.stderr)
        return 1
    print(summary(load_repository(args.repo)))
    return 0


def add_build(sub: Subparsers) -> None:
    """``build [--repo DIR] [--weights ...] [--device ...] [--quiet]``."""
    build = add_command(
        sub, "build", cmd_build, "build the DALI pipeline, Inception graph and labels"
    )
    add_repo(build)
    build.add_argument(
        "--weights",
        choices=["official", "random", "auto"],
        default="official",
        help="auto: official where the network allows, else random",
    )
    build.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    add_quiet(build)


def add_validate(sub: Subparsers) -> None:
    """``validate [--repo DIR] [--image TAG]``."""
    validate = add_command(
        sub, "validate", cmd_validate, "check every config.pbtxt and the ensemble"
    )
    add_repo(validate)
    validate.add_argument("--image", metavar="TAG", help="also check the image has each backend")


def register(sub: Subparsers) -> None:
    """The repository commands."""
    add_build(sub)
    add_validate(sub)
