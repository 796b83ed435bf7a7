"""Production traffic back into the loop: ``capture decode``, ``replay`` and their options.

``serve --capture/--mirror`` and ``promote --capture/--shadow/--shadow-promote``: ``serve``
and ``promote`` keep their own modules (:mod:`.local`, :mod:`.cloud`); the
options they take for capture, mirror and shadow are defined here, with the commands that
read the captures back (docs/production-traffic.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonship.cli.common import Subparsers, add_command, add_json, add_quiet, say
from tritonship.errors import UsageError
from tritonship.reporting import quiet
from tritonship.sagemaker.agreement import ATOL, RTOL
from tritonship.sagemaker.settings import run_dir

if TYPE_CHECKING:
    from tritonship.local.traffic_tap import TrafficOptions

#: What ``replay`` exits with when answers disagree or a target failed (as validate's 1).
DISAGREE_EXIT = 1


# --- serve --capture DIR, --mirror URL --------------------------------------------------------


def add_serve_traffic(serve: argparse.ArgumentParser) -> None:
    """``serve``'s capture and mirror options (the local runtime acts on them)."""
    serve.add_argument(
        "--capture",
        type=Path,
        metavar="DIR",
        help="write InvokeEndpoint calls to DIR as SageMaker's data capture does "
        "(DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)",
    )
    serve.add_argument(
        "--capture-percent",
        type=float,
        default=100.0,
        help="share of calls captured (default: %(default)s)",
    )
    serve.add_argument(
        "--mirror",
        metavar="URL",
        help="also send a copy of each InvokeEndpoint call to a second server's container "
        "API (e.g. http://127.0.0.1:9090) and log how its answers compare (a local shadow)",
    )
    serve.add_argument(
        "--mirror-percent",
        type=float,
        default=100.0,
        help="share of calls mirrored (default: %(default)s)",
    )
    serve.add_argument(
        "--mirror-log",
        type=Path,
        metavar="FILE",
        help="the comparison, one JSON line per mirrored call (default: mirror.jsonl in the "
        "run folder)",
    )


def traffic_options(args: argparse.Namespace) -> TrafficOptions | None:
    """The serve options for the runtime, or None when neither capture nor mirror is asked."""
    if not (args.capture or args.mirror):
        return None
    from tritonship.local.traffic_tap import TrafficOptions

    return TrafficOptions(
        args.capture, args.capture_percent, args.mirror, args.mirror_percent, args.mirror_log
    )


# --- promote --capture PCT, --shadow PCT, --shadow-promote ------------------------------------


def add_promote_traffic(promote: argparse.ArgumentParser) -> None:
    """``promote``'s data capture and shadow variant options."""
    promote.set_defaults(promote_parser=promote)  # require_bucket_and_role's usage error
    promote.add_argument(
        "--capture",
        type=int,
        metavar="PCT",
        help="data capture of PCT%% of requests and answers (DataCaptureConfig), JSON "
        "Lines in S3 (tritonship capture decode / replay read them)",
    )
    promote.add_argument(
        "--capture-prefix",
        metavar="s3://BUCKET/PREFIX",
        help="with --capture: where SageMaker writes (default s3://<bucket>/<prefix>/capture)",
    )
    promote.add_argument(
        "--shadow",
        type=float,
        metavar="PCT",
        help="deploy the archive as a shadow variant beside the live one, sent a copy of "
        "PCT%% of its requests (answers discarded); --variant names it (default Shadow)",
    )
    promote.add_argument(
        "--shadow-promote",
        action="store_true",
        help="make the endpoint's shadow variant the live one (no archive, no --bucket or "
        "--role; --traffic, --alarm and --bake apply)",
    )


def promote_traffic(args: argparse.Namespace) -> dict[str, Any]:
    """PromoteOptions' ``capture`` and ``shadow`` from the command line."""
    from tritonship.cloud.capture import CaptureSpec

    if args.capture_prefix and args.capture is None:
        raise UsageError("--capture-prefix goes with --capture PCT", hint="e.g. --capture 10")
    capture = CaptureSpec(args.capture, args.capture_prefix) if args.capture is not None else None
    return {"capture": capture, "shadow": args.shadow}


def cmd_shadow_promote(args: argparse.Namespace) -> int:
    """``promote --shadow-promote``: print the plan (--dry-run) or make the shadow live."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.endpoints import Waiting
    from tritonship.cloud.guardrails import (
        DEFAULT_DOWNLOAD_SECONDS,
        DEFAULT_STARTUP_SECONDS,
        budget_of,
        deployment_config,
        provisioning_seconds,
    )
    from tritonship.cloud.shadow_promote import (
        apply_promotion,
        describe_promotion,
        plan_promotion,
        summary_lines,
    )

    if args.shadow is not None or args.capture is not None or args.archive:
        raise UsageError(
            "--shadow-promote makes the deployed shadow live: it takes no archive, --shadow "
            "or --capture",
            hint="promote the shadow first, then run --shadow-promote alone",
        )
    # The shadow's model becomes the live variant's: a new fleet, with promote's budgets.
    provisioning = provisioning_seconds(DEFAULT_STARTUP_SECONDS, DEFAULT_DOWNLOAD_SECONDS, False)
    deployment = deployment_config(args.traffic, tuple(args.alarm), args.bake, provisioning)
    minutes = budget_of(deployment, provisioning).client_minutes
    waiting = Waiting.within(minutes if args.timeout is None else args.timeout, args.poll)
    region = resolve_region()
    clients = make_clients(region, attempts=1 if args.dry_run else 5)
    promotion, _ = plan_promotion(clients, args.endpoint, deployment)
    if args.dry_run:
        print(f"plan for endpoint {args.endpoint} in {region} (dry run: no write call made)")
        for number, line in enumerate(describe_promotion(promotion, waiting), 1):
            print(f"{number:3d}. {line}")
        return 0
    apply_promotion(clients, promotion, waiting, progress=not args.quiet, say=say)
    print("\n".join(summary_lines(promotion)))
    return 0


def require_bucket_and_role(args: argparse.Namespace) -> None:
    """Refuse a promote without --bucket or --role as argparse would (usage, exit 2).

    Only ``--shadow-promote`` goes without them, so argparse cannot require them itself.
    """
    missing = [f"--{name}" for name in ("bucket", "role") if not getattr(args, name)]
    if missing:
        args.promote_parser.error(
            f"the following arguments are required: {', '.join(missing)} "
            "(only --shadow-promote goes without them)"
        )


# --- tritonship capture decode -------------------------------------------------------------


def cmd_capture_decode(args: argparse.Namespace) -> int:
    """Decode every captured record into readable JSON and the original images."""
    from tritonship.replay.decode import decode_captures
    from tritonship.replay.sources import read_captures

    captures = read_captures(args.location)
    if not captures.records and not captures.problems:
        raise UsageError(
            f"no capture records in {args.location} ({captures.files} .jsonl file(s))",
            hint="serve --capture DIR, or promote --capture PCT, then send requests",
        )
    report = decode_captures(captures, args.out)
    for item in report.decoded:
        flag = f"  FAILED: {item.problem}" if item.problem else ""
        print(f"{item.folder}: {item.summary}{flag}")
    for problem in report.unreadable:
        say(f"unreadable: {problem}")
    print(
        f"decoded {len(report.decoded)} record(s) from {report.location} into {report.out} "
        f"({report.images} image(s), {len(report.failed)} failed, "
        f"{len(report.unreadable)} unreadable line(s))"
    )
    return 1 if report.failed or report.unreadable else 0


def add_capture(sub: Subparsers) -> None:
    """``capture decode S3-OR-DIR [--out DIR]``."""
    capture = sub.add_parser("capture", help="read SageMaker data capture records")
    commands = capture.add_subparsers(
        dest="capture_command", required=True, metavar="COMMAND", help="decode"
    )
    decode = add_command(
        commands,
        "decode",
        cmd_capture_decode,
        "captured records as readable JSON and the original images",
    )
    decode.add_argument(
        "location", metavar="S3-OR-DIR", help="s3://BUCKET/PREFIX or a folder of *.jsonl"
    )
    decode.add_argument(
        "--out",
        type=Path,
        default=run_dir() / "capture-decoded",
        help="where each record's folder goes (default: %(default)s)",
    )


# --- tritonship replay --------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    """Send captured requests to one or two targets; report agreement and latency."""
    from tritonship.replay.engine import against_target, make_target, replay
    from tritonship.replay.report import summary, write_report
    from tritonship.replay.sources import read_captures
    from tritonship.sagemaker.agreement import Tolerance

    if not (args.url or args.endpoint):
        raise UsageError("replay needs a target", hint="--url URL or --endpoint NAME")
    labels = _labels(args.labels)
    targets = [make_target(args.url or args.endpoint, bool(args.endpoint), labels[0])]
    if args.against:
        targets.append(against_target(args.against, labels[1]))
    captures = read_captures(args.location)
    progress = quiet if args.quiet else say
    result = replay(captures, targets, Tolerance(args.rtol, args.atol), args.limit, progress)
    # Beside the report unless asked (--results docs/results): a replay a user runs must not
    # dirty their working tree, as the bench's report does not.
    results = None if args.no_results else (args.results or args.out)
    paths = write_report(result, args.out, results_dir=results)
    if args.json:
        import json

        print(json.dumps(summary(result), indent=2))
    else:
        print((args.out / "replay.md").read_text(encoding="utf-8"))
    for path in paths:
        say(f"wrote {path}")
    return 0 if result.ok else DISAGREE_EXIT


def _labels(text: str | None) -> list[str | None]:
    """``--labels A,B`` -> two names (None where not given)."""
    if not text:
        return [None, None]
    parts = [part.strip() or None for part in text.split(",")]
    if len(parts) > 2:
        raise UsageError(f"--labels {text!r}: give one or two names", hint="e.g. TF,ONNX")
    return [*parts, None][:2]


def add_replay(sub: Subparsers) -> None:
    """``replay S3-OR-DIR (--url URL | --endpoint NAME) [--against URL|NAME] ...``."""
    parser = add_command(
        sub, "replay", cmd_replay, "send captured requests again; compare the answers"
    )
    parser.add_argument(
        "location", metavar="S3-OR-DIR", help="s3://BUCKET/PREFIX or a folder of *.jsonl"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="target A: a container API, e.g. http://127.0.0.1:8080")
    where.add_argument("--endpoint", metavar="NAME", help="target A: an endpoint (InvokeEndpoint)")
    parser.add_argument(
        "--against",
        metavar="URL|NAME",
        help="target B (a URL or an endpoint name); without it A is compared with the "
        "answers captured with the requests",
    )
    parser.add_argument("--labels", metavar="A,B", help="names for the targets in the report")
    parser.add_argument("--limit", type=int, help="replay only the first N requests")
    parser.add_argument(
        "--rtol", type=float, default=RTOL, help="relative tolerance (default: %(default)g)"
    )
    parser.add_argument(
        "--atol", type=float, default=ATOL, help="absolute tolerance (default: %(default)g)"
    )
    _add_replay_outputs(parser)


def _add_replay_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=run_dir() / "replay",
        help="report folder: replay.md and replay.json (default: %(default)s)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="folder for a stamped copy of replay.md, e.g. docs/results to keep it with the docs "
        "(default: the --out folder)",
    )
    parser.add_argument("--no-results", action="store_true", help="keep no stamped copy")
    add_quiet(parser, "no line per request")
    add_json(parser)


def register(sub: Subparsers) -> None:
    """``capture decode`` and ``replay``."""
    add_capture(sub)
    add_replay(sub)
