"""``tritonship bench``: closed-loop load against an endpoint, the in-process ceiling, a report.

Modules: :mod:`~tritonship.bench.load` (the load generator), :mod:`~.stats`
(percentiles, throughput), :mod:`~.metrics` (Triton's batch counters), :mod:`~.ceiling`
(the same pipeline and graph with no server), :mod:`~.targets`, :mod:`~.report` and
:mod:`~.runner` (one run, start to end).
"""

from tritonship.bench.report import write_report
from tritonship.bench.runner import FORMATS, BenchConfig, BenchResult, parse_levels, run_bench

__all__ = ["FORMATS", "BenchConfig", "BenchResult", "parse_levels", "run_bench", "write_report"]
