"""``tritonship bench``: closed-loop load against an endpoint, the in-process ceiling, a report.

Modules: :mod:`~tritonship.bench.load` (the load generator), :mod:`~.stats`
(percentiles, throughput), :mod:`~.metrics` (Triton's batch counters), :mod:`~.ceiling`
(the same pipeline and graph with no server), :mod:`~.targets`, :mod:`~.report` and
:mod:`~.runner` (one run, start to end).

Its extra dependencies (aiohttp, matplotlib) come with ``pip install 'tritonship[bench]'``;
without them, importing this package raises a one-line TritonshipError saying so.
"""

import importlib.util

from tritonship.errors import TritonshipError

#: The ``bench`` extra of pyproject.toml: the asyncio load generator and the report's chart.
EXTRA_MODULES = ("aiohttp", "matplotlib")


def require_extra() -> None:
    """Raise a one-line TritonshipError unless the ``bench`` extra is installed."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise TritonshipError(
            f"tritonship bench needs {' and '.join(missing)}, not installed here",
            hint="pip install 'tritonship[bench]'",
        )


require_extra()

from tritonship.bench.report import write_report  # noqa: E402 - after the extra is checked
from tritonship.bench.runner import (  # noqa: E402
    FORMATS,
    BenchConfig,
    BenchResult,
    parse_levels,
    run_bench,
)

__all__ = ["FORMATS", "BenchConfig", "BenchResult", "parse_levels", "run_bench", "write_report"]
