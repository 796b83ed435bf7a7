"""An endpoint's CloudWatch metrics per variant, in one ``GetMetricData`` call.

SageMaker publishes, per endpoint and production variant (dimensions ``EndpointName`` and
``VariantName``), the invocation metrics in namespace ``AWS/SageMaker`` and the instance
metrics in ``/aws/sagemaker/Endpoints`` (AWS guide "Amazon SageMaker AI metrics in Amazon
CloudWatch"). ``ModelLatency`` and ``OverheadLatency`` are in microseconds; utilisation is
a percentage (per core or per GPU, so a 4-core instance can read up to 400 %; memory, GPU
memory and disk utilisation are percentages of the instance's).

The window's mean of an Average metric is weighted by each period's ``SampleCount`` (read
in the same call): a period of 1,000 invocations counts a thousand times more than one of
a single invocation, as it does in the latency users saw. Periods without a sample count
fall back to the plain mean of the period averages.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tritonship.errors import TritonshipError

INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
#: GetMetricData takes at most 500 queries in one call.
MAX_QUERIES = 500


@dataclass(frozen=True)
class MetricSpec:
    """One metric the toolkit reads: where it lives, how to aggregate it, how to show it."""

    namespace: str
    name: str
    stat: str
    unit: str
    scale: float = 1.0  # multiply CloudWatch's value by this for ``unit``


METRICS = (
    MetricSpec(INVOCATION_NAMESPACE, "Invocations", "Sum", "count"),
    MetricSpec(INVOCATION_NAMESPACE, "ModelLatency", "Average", "ms", 1e-3),
    MetricSpec(INVOCATION_NAMESPACE, "OverheadLatency", "Average", "ms", 1e-3),
    MetricSpec(INVOCATION_NAMESPACE, "Invocation4XXErrors", "Sum", "count"),
    MetricSpec(INVOCATION_NAMESPACE, "Invocation5XXErrors", "Sum", "count"),
    MetricSpec(INSTANCE_NAMESPACE, "CPUUtilization", "Average", "%"),
    MetricSpec(INSTANCE_NAMESPACE, "GPUUtilization", "Average", "%"),
    MetricSpec(INSTANCE_NAMESPACE, "MemoryUtilization", "Average", "%"),
    MetricSpec(INSTANCE_NAMESPACE, "GPUMemoryUtilization", "Average", "%"),
    MetricSpec(INSTANCE_NAMESPACE, "DiskUtilization", "Average", "%"),
)
#: The statistic that weights an Average over several periods.
SAMPLE_COUNT = "SampleCount"


@dataclass(frozen=True)
class Series:
    """One metric of one variant over the window (oldest point first, values in ``unit``)."""

    variant: str
    spec: MetricSpec
    timestamps: tuple[datetime, ...]
    values: tuple[float, ...]
    counts: tuple[float, ...] = ()  # SampleCount per period (an Average), same order

    def summary(self) -> float | None:
        """The window's total (a Sum) or mean (an Average, weighted by SampleCount).

        None: no data.
        """
        if not self.values:
            return None
        total = sum(self.values)
        if self.spec.stat == "Sum":
            return total
        weight = sum(self.counts)
        if len(self.counts) == len(self.values) and weight > 0:
            return sum(v * n for v, n in zip(self.values, self.counts, strict=True)) / weight
        return total / len(self.values)

    @property
    def peak(self) -> float | None:
        """The largest period value."""
        return max(self.values) if self.values else None

    @property
    def last(self) -> float | None:
        """The most recent period value."""
        return self.values[-1] if self.values else None


@dataclass(frozen=True)
class MetricsReport:
    """What ``tritonship metrics`` shows."""

    endpoint: str
    start: datetime
    end: datetime
    period: int
    series: tuple[Series, ...]

    @property
    def variants(self) -> list[str]:
        """The variants, in the order they were asked for."""
        return list(dict.fromkeys(series.variant for series in self.series))


def cloudwatch_client(region: str) -> Any:
    """A CloudWatch client for ``region`` with botocore's standard retries."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
    return boto3.session.Session(region_name=region).client("cloudwatch", config=config)


def period_for(seconds: float) -> int:
    """A CloudWatch period giving at most a few hundred points over ``seconds``."""
    if seconds <= 3 * 3600:
        return 60
    if seconds <= 24 * 3600:
        return 300
    return 3600


def find_variants(cloudwatch: Any, endpoint: str) -> list[str]:
    """The variants with invocation or instance metrics for ``endpoint`` (ListMetrics)."""
    paginator = cloudwatch.get_paginator("list_metrics")
    found: dict[str, None] = {}
    for namespace in (INVOCATION_NAMESPACE, INSTANCE_NAMESPACE):
        pages = paginator.paginate(
            Namespace=namespace, Dimensions=[{"Name": "EndpointName", "Value": endpoint}]
        )
        for page in pages:
            for metric in page.get("Metrics", []):
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if "VariantName" in dims:
                    found[dims["VariantName"]] = None
    return sorted(found)


def build_queries(endpoint: str, variants: list[str], period: int) -> list[dict[str, Any]]:
    """Every metric of every variant as one ``MetricDataQueries`` list.

    Ids ``m0``, ``m1``, ...; an Average metric ``mK`` also has its SampleCount as ``nK``.
    """
    queries: list[dict[str, Any]] = []
    for index, (variant, spec) in enumerate((v, s) for v in variants for s in METRICS):
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
        ]
        metric = {"Namespace": spec.namespace, "MetricName": spec.name, "Dimensions": dimensions}
        stats = [("m", spec.stat)] + ([("n", SAMPLE_COUNT)] if spec.stat == "Average" else [])
        queries += [
            {
                "Id": f"{prefix}{index}",
                "Label": f"{variant}/{spec.name}" + ("" if prefix == "m" else f"/{stat}"),
                "MetricStat": {"Metric": metric, "Period": period, "Stat": stat},
                "ReturnData": True,
            }
            for prefix, stat in stats
        ]
    if len(queries) > MAX_QUERIES:
        raise TritonshipError(
            f"{len(variants)} variants need {len(queries)} metric queries, over CloudWatch's "
            f"{MAX_QUERIES}",
            hint="name fewer with --variant",
        )
    return queries


def read_metrics(
    cloudwatch: Any,
    endpoint: str,
    since_seconds: float,
    variants: list[str] | None = None,
    now: float | None = None,
) -> MetricsReport:
    """Every metric of every variant over the last ``since_seconds``, in one GetMetricData.

    ``variants`` None: those ListMetrics knows for the endpoint (none: an empty report).
    GetMetricData's pages (NextToken) are read with boto3's paginator.
    """
    end = datetime.fromtimestamp(now if now is not None else time.time(), tz=timezone.utc)
    start = datetime.fromtimestamp(end.timestamp() - since_seconds, tz=timezone.utc)
    period = period_for(since_seconds)
    names = variants if variants is not None else find_variants(cloudwatch, endpoint)
    queries = build_queries(endpoint, names, period)
    points: dict[str, dict[datetime, float]] = {query["Id"]: {} for query in queries}
    if queries:
        paginator = cloudwatch.get_paginator("get_metric_data")
        pages = paginator.paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                values = points[result["Id"]]
                values.update(
                    zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
                )
    series = [_series(query, points) for query in queries if query["Id"].startswith("m")]
    return MetricsReport(endpoint, start, end, period, tuple(series))


def _series(query: dict[str, Any], points: dict[str, dict[datetime, float]]) -> Series:
    """One metric's series, with the SampleCount of each of its periods when there is one."""
    variant, _, name = query["Label"].partition("/")
    spec = next(spec for spec in METRICS if spec.name == name)
    ordered = sorted(points[query["Id"]].items())
    counts = points.get("n" + query["Id"][1:], {})
    return Series(
        variant,
        spec,
        tuple(when for when, _ in ordered),
        tuple(value * spec.scale for _, value in ordered),
        tuple(counts[when] for when, _ in ordered) if all(w in counts for w, _ in ordered) else (),
    )


def require_matplotlib() -> None:
    """A one-line error unless matplotlib (the ``bench`` extra) is installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise TritonshipError(
            "metrics --plot needs matplotlib, not installed here",
            hint="pip install 'tritonship[bench]'",
        )


def plot_png(report: MetricsReport, out: Path) -> Path:
    """One panel per metric, one line per variant, written to ``out`` as a PNG."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(METRICS), 1, figsize=(9, 2.2 * len(METRICS)), sharex=True)
    for axis, spec in zip(axes, METRICS, strict=True):
        for series in (s for s in report.series if s.spec == spec):
            axis.plot(series.timestamps, series.values, marker=".", label=series.variant)
        axis.set_ylabel(f"{spec.name}\n({spec.stat}, {spec.unit})", fontsize=8)
        axis.grid(alpha=0.3)
    axes[0].set_title(f"{report.endpoint}: {report.period} s periods")
    if report.variants:
        axes[0].legend(fontsize=8)
    axes[-1].set_xlim(report.start, report.end)
    figure.autofmt_xdate()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
