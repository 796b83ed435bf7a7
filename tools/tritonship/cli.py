"""The ``tritonship`` command line: parse arguments, call the library, print results."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tritonship import __version__
from tritonship.errors import TritonshipError
from tritonship.paths import DEFAULT_REPOSITORY

Command = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    """Progress lines go to stderr so stdout stays machine-readable."""
    print(f"tritonship: {message}", file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    """Build every artifact of the repository."""
    from tritonship.build import build_repository

    manifest = build_repository(
        args.repo, weights=args.weights, device=args.device, progress=not args.quiet, say=_say
    )
    weights = manifest["weights"]
    print(
        f"built {args.repo}: {weights['source']} weights (sha256 {weights['graph_sha256'][:12]}), "
        f"DALI {manifest['dali']['build_dali_version']} {manifest['dali']['mode']}, "
        f"target {manifest['device_target']}, {len(manifest['files'])} files, "
        f"{manifest['seconds']} s"
    )
    if weights["source"] == "random":
        _say("NOTICE: random weights - the labels the model predicts are meaningless; "
             "build with --weights official for real predictions")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate the repository; exit 1 with one line per finding."""
    from tritonship.repository import (
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


def _add_repo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY,
                        help="model repository (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="tritonship",
        description="Build, validate, serve and ship a Triton DALI + Inception V3 ensemble.",
    )
    parser.add_argument("--version", action="version", version=f"tritonship {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = sub.add_parser("build", help="build the DALI pipeline, Inception graph and labels")
    _add_repo(build)
    build.add_argument("--weights", choices=["official", "random"], default="official")
    build.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_build)

    validate = sub.add_parser("validate", help="check every config.pbtxt and the ensemble")
    _add_repo(validate)
    validate.add_argument("--image", metavar="TAG", help="also check the image has each backend")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tritonship`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except TritonshipError as err:
        if args.debug:
            raise
        print(f"tritonship: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("tritonship: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
