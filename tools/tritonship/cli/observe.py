"""``tritonship logs``, ``metrics`` and ``status``: what a SageMaker endpoint says and is."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tritonship.cli.common import Subparsers, add_command, add_json, say

if TYPE_CHECKING:
    from tritonship.cloud.metrics import MetricsReport


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the endpoint's log events since ``--since``; with ``--follow``, until Ctrl-C."""
    from tritonship.cloud.aws import aws_errors, resolve_region
    from tritonship.cloud.logs import (
        follow_events,
        log_group,
        logs_client,
        parse_since,
        read_events,
    )

    start_ms = int((time.time() - parse_since(args.since)) * 1000)
    client = logs_client(resolve_region())
    events = (
        follow_events(client, args.endpoint, start_ms, interval=args.interval)
        if args.follow
        else read_events(client, args.endpoint, start_ms)
    )
    shown = 0
    try:
        with aws_errors(f"reading {log_group(args.endpoint)}"):
            for event in events:
                print(event.render(), flush=True)
                shown += 1
    except KeyboardInterrupt:
        return 0  # the way to stop --follow
    if not shown:
        say(f"no log events in {log_group(args.endpoint)} in the last {args.since}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print a table (or JSON) of the endpoint's metrics per variant; ``--plot`` a PNG."""
    from tritonship.cloud.aws import aws_errors, resolve_region
    from tritonship.cloud.logs import parse_since
    from tritonship.cloud.metrics import (
        cloudwatch_client,
        plot_png,
        read_metrics,
        require_matplotlib,
    )

    if args.plot:
        require_matplotlib()  # fail before any AWS call
    since = parse_since(args.since)
    region = resolve_region()
    roles = _variant_roles(region, args.endpoint)
    # Every live and shadow variant DescribeEndpoint names, even one without metrics yet.
    variants = args.variant or (list(roles) or None)
    with aws_errors(f"reading the CloudWatch metrics of {args.endpoint}"):
        report = read_metrics(cloudwatch_client(region), args.endpoint, since, variants)
    if not report.series:
        say(
            f"no CloudWatch metrics for endpoint {args.endpoint} "
            "(name a variant with --variant, or check the name and AWS_REGION)"
        )
    if args.json:
        print(json.dumps(_as_json(report, roles), indent=2))
    elif report.series:
        _print_table(report, args.since, roles)
        from tritonship.cloud.shadow import comparison_lines

        for line in comparison_lines(report, roles):
            print(line)
    if args.plot:
        say(f"wrote {plot_png(report, args.plot)}")
    return 0


def _variant_roles(region: str, endpoint: str) -> dict[str, str]:
    """Which variants are live and which shadow (DescribeEndpoint; ``{}`` if unreadable)."""
    import boto3

    from tritonship.cloud.shadow import variant_roles

    return variant_roles(boto3.session.Session(region_name=region).client("sagemaker"), endpoint)


def _as_json(report: MetricsReport, roles: dict[str, str]) -> dict[str, object]:
    return {
        "endpoint": report.endpoint,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "period_seconds": report.period,
        "series": [
            {
                "variant": s.variant,
                "role": roles.get(s.variant),
                "metric": s.spec.name,
                "namespace": s.spec.namespace,
                "stat": s.spec.stat,
                "unit": s.spec.unit,
                "summary": s.summary(),
                "summary_weighted_by_sample_count": bool(s.counts),
                "max": s.peak,
                "last": s.last,
                "points": [
                    [when.isoformat(), value]
                    for when, value in zip(s.timestamps, s.values, strict=True)
                ],
            }
            for s in report.series
        ],
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.1f} {unit}" if unit == "%" else f"{value:,.2f} {unit}"


def _print_table(report: MetricsReport, since: str, roles: dict[str, str]) -> None:
    """A table: variant, metric, stat, window total or mean, max, last, points."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.endpoint}: last {since}, {report.period} s periods")
    for column in ("variant", "metric", "stat", "window", "max", "last", "points"):
        table.add_column(column, justify="left" if column in ("variant", "metric") else "right")
    for variant in report.variants:
        rows = [s for s in report.series if s.variant == variant]
        for index, series in enumerate(rows):
            unit = series.spec.unit
            named = f"{variant} ({roles[variant]})" if variant in roles else variant
            table.add_row(
                named if index == 0 else "",
                series.spec.name,
                "total" if series.spec.stat == "Sum" else _mean_kind(series),
                _number(series.summary(), unit),
                _number(series.peak, unit),
                _number(series.last, unit),
                str(len(series.values)),
                end_section=index == len(rows) - 1,
            )
    Console(width=120).print(table)


def _mean_kind(series) -> str:  # noqa: ANN001 - a Series, imported lazily
    """How the window's mean was taken."""
    return "mean (weighted)" if series.counts else "mean"


def add_logs(sub: Subparsers) -> None:
    """``logs --endpoint E [--since 10m] [--follow] [--interval S]``."""
    logs = add_command(sub, "logs", cmd_logs, "print a SageMaker endpoint's CloudWatch logs")
    logs.add_argument("--endpoint", required=True, metavar="NAME", help="the endpoint's name")
    logs.add_argument(
        "--since", default="10m", help="how far back: 30s, 10m, 1h, 2d (default: %(default)s)"
    )
    logs.add_argument("--follow", action="store_true", help="keep printing new events (Ctrl-C)")
    logs.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="--follow: seconds between polls, 1-60 (default: %(default)s)",
    )


def add_metrics(sub: Subparsers) -> None:
    """``metrics --endpoint E [--since 1h] [--variant V ...] [--plot FILE] [--json]``."""
    metrics = add_command(
        sub, "metrics", cmd_metrics, "show a SageMaker endpoint's CloudWatch metrics per variant"
    )
    metrics.add_argument("--endpoint", required=True, metavar="NAME", help="the endpoint's name")
    metrics.add_argument(
        "--since", default="1h", help="how far back: 30m, 1h, 2d (default: %(default)s)"
    )
    metrics.add_argument(
        "--variant",
        action="append",
        metavar="NAME",
        help="only this production variant (repeatable; default: every variant with metrics)",
    )
    metrics.add_argument(
        "--plot", type=Path, metavar="FILE", help="also write a PNG (needs the bench extra)"
    )
    add_json(metrics)


def cmd_status(args: argparse.Namespace) -> int:
    """Print where the endpoint stands; finish what a promote left once it settled."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.status import endpoint_status, status_json, status_lines

    report = endpoint_status(make_clients(resolve_region()), args.endpoint)
    if args.json:
        print(json.dumps(status_json(report), indent=2, default=str))
    else:
        print("\n".join(status_lines(report)))
    return 0


def add_status(sub: Subparsers) -> None:
    """``status --endpoint NAME [--json]``."""
    status = add_command(
        sub,
        "status",
        cmd_status,
        "a SageMaker endpoint's status, deployment stage, variants and what promote left",
    )
    status.add_argument("--endpoint", required=True, metavar="NAME", help="the endpoint's name")
    add_json(status)


def register(sub: Subparsers) -> None:
    """The observability commands."""
    add_logs(sub)
    add_metrics(sub)
    add_status(sub)
