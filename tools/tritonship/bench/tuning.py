"""The tuning study: the same bench on variants of the repository's configs (native engine).

``tritonship bench tune [--variants a,b] [--concurrency 1,4,8,16] [--duration 8]`` copies
the repository once per variant (artifacts hard-linked), edits its configs, serves it
with the native engine and Triton metrics on free ports, benches it (``--format``, binary
by default, then the in-process ceiling), stops it, and prints one table row per variant;
a run that other processes disturbed is repeated. The README's tables come from this.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.bench.ceiling import best as best_ceiling
from tritonship.bench.noise import foreign_load
from tritonship.bench.report import write_report
from tritonship.bench.runner import BenchConfig, BenchResult, run_bench
from tritonship.errors import UsageError
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.settings import packaged_env

Edit = Callable[[dict[str, mc.ModelConfig]], None]
#: The key under which edits find the repository's classifier (TensorFlow or ONNX).
CLASSIFIER = "classifier"


def _batching(delay_us: int = 0, ragged: bool = True) -> Edit:
    """Dynamic batching on both steps (the ensemble itself has no batcher)."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        for name in ("dali", CLASSIFIER):
            configs[name].dynamic_batching.max_queue_delay_microseconds = delay_us
        configs["dali"].input[0].allow_ragged_batch = ragged

    return edit


def _instances(model: str, count: int) -> Edit:
    """``count`` CPU instances of ``model``."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        del configs[model].instance_group[:]
        configs[model].instance_group.add(count=count, kind=mc.ModelInstanceGroup.KIND_CPU)

    return edit


def _dali_threads(threads: int) -> Edit:
    """The DALI pipeline's ``num_threads`` parameter."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        configs["dali"].parameters["num_threads"].string_value = str(threads)

    return edit


def _ort_threads(intra: int, inter: int = 0) -> Edit:
    """The ONNX classifier's ``intra_op_thread_count`` / ``inter_op_thread_count`` (0: ORT's)."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        parameters = configs[CLASSIFIER].parameters
        for key, value in (("intra_op_thread_count", intra), ("inter_op_thread_count", inter)):
            parameters[key].string_value = str(value)

    return edit


def _unguarded() -> Edit:
    """The ensemble without its guard step, images straight to ``dali`` (the cost of the guard)."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        for config in configs.values():
            scheduling = config.ensemble_scheduling
            guard = [s for s in scheduling.step if s.model_name == "guard"]
            if not guard:
                continue
            source = guard[0].input_map["IMAGE"]
            checked = guard[0].output_map["CHECKED_IMAGE"]
            scheduling.step.remove(guard[0])
            for step in scheduling.step:
                for key, value in step.input_map.items():
                    if value == checked:
                        step.input_map[key] = source

    return edit


def AS_COMMITTED(configs: dict[str, mc.ModelConfig]) -> None:  # noqa: N802 - a marker
    """First in a variant's edits: start from the committed configs, not the neutral ones."""


def _neutral() -> Edit:
    """Drop what the variants set: batching, instance groups (the pre-tuning configs)."""

    def edit(configs: dict[str, mc.ModelConfig]) -> None:
        for config in (configs["dali"], configs[CLASSIFIER]):
            config.ClearField("dynamic_batching")
            config.ClearField("instance_group")
            for tensor in config.input:
                tensor.ClearField("allow_ragged_batch")
        configs["dali"].parameters["num_threads"].string_value = "12"

    return edit


#: name -> the edits from the pre-tuning configs (no batcher, default instances, 12 threads).
VARIANTS: dict[str, list[Edit] | None] = {
    "before": [],
    "batching": [_batching()],
    "batching-delay2ms": [_batching(2000)],
    "batching-tf1": [_batching(), _instances("inception_graphdef", 1)],
    "batching-tf1-dali2": [_batching(), _instances("inception_graphdef", 1), _instances("dali", 2)],
    "batching-tf1-threads1": [_batching(), _instances("inception_graphdef", 1), _dali_threads(1)],
    "current": None,  # the repository's configs, unchanged
    # The configs before the guard step existed: a batcher on dali (its cost: hardening.md).
    "unguarded": [_batching(), _instances(CLASSIFIER, 1), _unguarded()],
    # The classifier's threads and instances on top of the committed configs (ONNX build).
    "onnx-1x-threads2": [AS_COMMITTED, _instances(CLASSIFIER, 1), _ort_threads(2)],
    "onnx-1x-threads1": [AS_COMMITTED, _instances(CLASSIFIER, 1), _ort_threads(1)],
    "onnx-2x-threads1": [AS_COMMITTED, _instances(CLASSIFIER, 2), _ort_threads(1)],
}


def variant_repository(source: Path, target: Path, edits: list[Edit] | None) -> Path:
    """Copy ``source`` (artifacts hard-linked) and apply ``edits`` to the copy's configs."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        source, target, copy_function=os.link, ignore=shutil.ignore_patterns("__pycache__")
    )
    if edits is None:
        return target
    paths = {path.parent.name: path for path in sorted(target.glob("*/config.pbtxt"))}
    configs = {
        name: text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())
        for name, path in paths.items()
    }
    labelled = [n for n, c in configs.items() if any(o.label_filename for o in c.output)]
    if labelled:  # edits name the classifier "classifier", whatever its format
        configs[CLASSIFIER] = configs[labelled[0]]
    start = [] if edits and edits[0] is AS_COMMITTED else [_neutral()]
    for edit in [*start, *edits]:
        edit(configs)
    for name, path in paths.items():
        path.unlink()  # a hard link would write through to the source
        path.write_text(text_format.MessageToString(configs[name]), encoding="utf-8")
    return target


@contextmanager
def served(repository: Path, state: Path) -> Iterator[tuple[str, str]]:
    """The native engine on ``repository`` with metrics, on free ports: (url, metrics URL)."""
    from tritonship.local.engine import free_port
    from tritonship.local.native import NativeEngine

    metrics_port = free_port()
    env = {
        **packaged_env(repository).values,
        "SAGEMAKER_TRITON_ALLOW_METRICS": "true",
        "SAGEMAKER_TRITON_METRICS_PORT": str(metrics_port),
    }
    with NativeEngine(repository, port=free_port(), sagemaker_env=env, run_dir=state) as engine:
        yield engine.url, f"http://127.0.0.1:{metrics_port}/metrics"


def bench_variant(name: str, base: BenchConfig, source: Path, work: Path) -> BenchResult:
    """Serve one variant, bench it, stop it; the report goes to ``work/<name>/``."""
    repository = variant_repository(source, work / name / "model_repository", VARIANTS[name])
    return bench_repository(name, base, repository, work)


def bench_repository(name: str, base: BenchConfig, repository: Path, work: Path) -> BenchResult:
    """Serve ``repository`` natively, bench it, stop it; the report goes to ``work/<name>/``."""
    with served(repository, work / name / "run") as (url, metrics_url):
        config = BenchConfig(
            **{**vars(base), "url": url, "metrics_url": metrics_url, "repository": repository}
        )
        with foreign_load() as noise:
            result = run_bench(config)
    result.meta["foreign_cores"] = noise["cores"]
    write_report(result, work / name)
    return result


def quiet_bench(
    name: str,
    base: BenchConfig,
    source: Path,
    work: Path,
    tries: int,
    max_noise: float,
    say: Reporter = quiet,
) -> BenchResult:
    """Bench a variant again (up to ``tries`` times) while other work disturbed the run."""
    for _ in range(max(tries, 1)):
        result = bench_variant(name, base, source, work)
        if result.meta["foreign_cores"] <= max_noise:
            break
        say(f"{name}: other processes kept {result.meta['foreign_cores']} cores busy; again")
    return result


def table_row(name: str, result: BenchResult) -> str:
    """One markdown row of the study: a variant's binary levels and its ceiling.

    Images/s (p99 ms) per level, the server batch, the ceiling and its trial, served /
    ceiling, errors, and the cores other work used.
    """
    levels = [level for level in result.levels if level.format == "binary"]
    cells = [f"{lv.throughput:.1f} ({lv.latency_ms['p99']:.0f})" for lv in levels]
    best = max(levels, key=lambda lv: lv.throughput)
    reached = best.server_batch.get("inception_graphdef") or best.server_batch.get("inception_onnx")
    batch = "-" if reached is None else reached
    ceiling = best_ceiling(result.ceilings)
    top = ceiling.throughput if ceiling else float("nan")
    trial = ceiling.describe() if ceiling else "no ceiling"
    errors = sum(level.errors for level in result.levels)
    return (
        f"| {name} | " + " | ".join(cells) + f" | {batch} | {top:.1f} ({trial}) | "
        f"{best.throughput / top:.2f} | {errors} | {result.meta['foreign_cores']} |"
    )


def variant_names(text: str | None) -> list[str]:
    """``a,b`` -> the variants to bench, each one known (None: every variant)."""
    if text is None:
        return list(VARIANTS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise UsageError(
            f"--variants {text!r}: unknown variant(s) {', '.join(unknown) or '(none given)'}",
            hint=f"choose from {', '.join(VARIANTS)}",
        )
    return names
