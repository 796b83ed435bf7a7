"""One bench run: the served levels (format x concurrency), then the in-process ceiling.

The ceiling runs after the load, never during it: on a 2-core machine the two would
share the cores and both numbers would be wrong. With it, the machine's compute rate
(:mod:`.hardware`): the report gives each throughput as GFLOP/s and as a share of it.

By default every request carries a photo for our ensemble. With ``body`` it carries a
user's prepared request body instead, for any model: the levels then count requests, and
there is no in-process ceiling (it is our ensemble's pipeline and graph). ``target_model``
sends each InvokeEndpoint to one model of a multi-model endpoint.
"""

from __future__ import annotations

import asyncio
import io
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonship import __version__
from tritonship.bench import metrics
from tritonship.bench.ceiling import Ceiling, ceilings
from tritonship.bench.ceiling import best as best_ceiling
from tritonship.bench.display import Display
from tritonship.bench.hardware import INCEPTION_GFLOP, measure_compute_rate
from tritonship.bench.load import (
    HttpSender,
    LevelRun,
    SageMakerSender,
    Sender,
    SendError,
    Tick,
    closed_loop,
)
from tritonship.bench.noise import foreign_load
from tritonship.bench.stats import LevelStats, summarise
from tritonship.bench.targets import (
    Check,
    best_level,
    error_check,
    format_checks,
    server_batch,
    throughput_check,
)
from tritonship.errors import TritonshipError, UsageError
from tritonship.paths import DEFAULT_REPOSITORY
from tritonship.reporting import Reporter, quiet
from tritonship.repository.config import Repository
from tritonship.sagemaker.tensors import check_payload, decode_answer, read_body
from tritonship.sagemaker.wire import EncodedRequest, decode_response, encode_as

#: ``--format`` -> the request formats benched (raw: the JPEG is the whole body, one image).
FORMATS = {
    "binary": ("binary",),
    "json": ("json",),
    "raw": ("raw",),
    "both": ("binary", "json"),
    "all": ("binary", "json", "raw"),
}
#: The bench photo: scikit-image's rocket (427x640) resized to 640x480.
PHOTO_SIZE = (640, 480)
#: The "format" of the levels that send a user's request body as is.
BODY_FORMAT = "body"


@dataclass
class BenchConfig:
    """What to bench and for how long."""

    url: str | None = "http://127.0.0.1:8080"
    endpoint: str | None = None
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    duration: float = 10.0
    warmup: float = 2.0
    formats: tuple[str, ...] = ("binary",)
    repository: Path = DEFAULT_REPOSITORY
    image: Path | None = None
    metrics_url: str | None = None
    ceiling: bool = True
    progress: bool = True
    body: Path | None = None  # a prepared request body, sent as is (any model)
    content_type: str | None = None  # the body's Content-Type (default: JSON)
    target_model: str | None = None  # InvokeEndpoint's TargetModel (multi-model endpoints)


@dataclass
class BenchResult:
    """Everything the report shows."""

    meta: dict[str, Any]
    levels: list[LevelStats]
    ceilings: list[Ceiling]
    checks: list[Check]

    @property
    def targets(self) -> list[str]:
        """One line per target."""
        return [check.line() for check in self.checks]


def parse_levels(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]`` (positive, deduplicated, in order)."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise UsageError(f"--concurrency {text!r}: give positive integers, e.g. 1,2,4,8,16")
    return list(dict.fromkeys(levels))


def bench_photo() -> bytes:
    """A 640x480 JPEG: scikit-image's rocket photo resized with Pillow (quality 90)."""
    from PIL import Image

    from tritonship.samples import photo_array

    buffer = io.BytesIO()
    photo = Image.fromarray(photo_array("rocket")).resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _image(config: BenchConfig) -> tuple[bytes, str]:
    """The image every request carries, and how the report names it."""
    if config.image is None:
        data = bench_photo()
        return data, f"rocket 640x480 JPEG, {len(data)} B"
    try:
        data = config.image.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {config.image}: {err.strerror}") from err
    return data, f"{config.image.name}, {len(data)} B"


@dataclass(frozen=True)
class Payload:
    """What every request carries: the request per format, its report fields, the photo.

    ``image`` is None for a user's request body.
    """

    requests: dict[str, EncodedRequest]
    meta: dict[str, Any]
    image: bytes | None = None


def _payload(config: BenchConfig) -> Payload:
    """The request of each format, and how the report names what they carry."""
    if config.body is not None:
        request = check_payload(read_body(config.body, config.content_type))
        body = {
            "file": str(config.body),
            "bytes": len(request.body),
            "content_type": request.content_type,
        }
        return Payload({BODY_FORMAT: request}, {"image": None, "body": body, "unit": "requests"})
    image, name = _image(config)
    bodies = {fmt: encode_as([image], fmt) for fmt in config.formats}
    return Payload(bodies, {"image": name, "body": None, "unit": "images"}, image)


def make_sender(config: BenchConfig, request: EncodedRequest, concurrency: int) -> Sender:
    """The aiohttp sender (--url) or the boto3 one (--endpoint, to its target model)."""
    if config.endpoint:
        return SageMakerSender(
            config.endpoint, request, concurrency, target_model=config.target_model
        )
    if config.target_model:
        raise UsageError(
            "a target model needs an endpoint",
            hint="InvokeEndpoint picks a multi-model endpoint's model: bench --endpoint NAME",
        )
    return HttpSender(config.url or "http://127.0.0.1:8080", request, concurrency)


async def _probe(sender: Sender, images: int | None) -> None:
    """One request before the level: the endpoint must answer.

    For images, with ``images`` softmax rows; for a user's body (``images`` None), with
    a 200 and, when it says it is an inference response, one that decodes.
    """
    try:
        reply = await sender.send()
    except SendError as err:
        raise TritonshipError(
            f"{sender.target}: {err}",
            hint="is the endpoint running? start it with: tritonship serve",
        ) from err
    if images is None:
        decode_answer(reply.body, reply.content_type)
        return
    output = decode_response(reply.body, reply.content_type)
    if output.shape[0] != images:
        raise TritonshipError(f"{sender.target} answered {output.shape[0]} rows for {images}")


async def _first_request(config: BenchConfig, request: EncodedRequest) -> float:
    """Seconds of one request sent before any level: the first-request latency, apart.

    On a server that has answered nothing yet it includes whatever the warmup left to
    the first request (a TensorRT engine, cuDNN autotuning); the levels never count it.
    """
    sender = make_sender(config, request, 1)
    try:
        started = time.perf_counter()
        await _probe(sender, None if config.body is not None else 1)
        return time.perf_counter() - started
    finally:
        await sender.close()


async def _load(
    config: BenchConfig, request: EncodedRequest, concurrency: int, tick: Tick
) -> LevelRun:
    """Probe, then run the closed loop at one concurrency."""
    sender = make_sender(config, request, concurrency)
    try:
        await _probe(sender, None if config.body is not None else 1)
        return await closed_loop(sender, concurrency, config.warmup, config.duration, 1, tick)
    finally:
        await sender.close()


def run_level(
    config: BenchConfig, fmt: str, request: EncodedRequest, concurrency: int, display: Display
) -> LevelStats:
    """One level: load, statistics, and the server's average batch from its metrics."""
    tick, done = display.level(f"{fmt} x{concurrency}", config.warmup + config.duration)
    before = metrics.scrape(config.metrics_url)
    run = asyncio.run(_load(config, request, concurrency, tick))
    stats = summarise(run.samples, run.window, fmt, concurrency, len(request.body), run.client_cpu)
    stats.server_batch = metrics.average_batches(before, metrics.scrape(config.metrics_url))
    done(stats)
    return stats


def served_repository(path: Path) -> Repository | None:
    """The repository benched, parsed once (None: none here, e.g. a remote endpoint's)."""
    from tritonship.repository.config import load_repository

    try:
        return load_repository(path)
    except TritonshipError:
        return None


def dynamic_batching(repository: Repository | None) -> bool:
    """Whether the classifier batches requests together (a ``dynamic_batching`` block)."""
    from tritonship.repository.config import classifier

    model = classifier(repository) if repository is not None else None
    return model is not None and model.config.HasField("dynamic_batching")


def machine() -> str:
    """The machine in a few words: the label the report puts on its numbers."""
    gpu = "GPU" if _has_gpu() else "no GPU"
    return f"{os.cpu_count()} cores ({_cpu_model()}), {gpu}"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _has_gpu() -> bool:
    """Whether DALI sees a CUDA device here."""
    from tritonship.repository.dali import cuda_device_count

    return cuda_device_count() > 0


def _target(config: BenchConfig) -> str | None:
    """What the load goes to: the URL, or the endpoint (and its target model)."""
    if not config.endpoint:
        return config.url
    model = f" model {config.target_model}" if config.target_model else ""
    return f"endpoint {config.endpoint}{model}"


def _meta(config: BenchConfig, carried: dict[str, Any]) -> dict[str, Any]:
    """What the run was: target, machine, what requests carry, timings, load before the run."""
    return {
        "target": _target(config),
        "target_model": config.target_model,
        "transport": "boto3 sagemaker-runtime (thread pool)"
        if config.endpoint
        else "aiohttp (asyncio)",
        "machine": machine(),
        **carried,
        "formats": [BODY_FORMAT] if config.body is not None else list(config.formats),
        "concurrency": config.concurrency,
        "duration": config.duration,
        "warmup": config.warmup,
        "repository": str(config.repository),
        "metrics_url": config.metrics_url,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "tritonship": __version__,
        "load_average_before": os.getloadavg(),
    }


def _levels(config: BenchConfig, payload: Payload, meta: dict[str, Any]) -> list[LevelStats]:
    """Every (format, concurrency) level, with the cores other processes used meanwhile."""
    display = Display(config.progress, payload.meta["unit"])
    with display.running(), foreign_load() as noise:
        levels = [
            run_level(config, fmt, request, concurrency, display)
            for fmt, request in payload.requests.items()
            for concurrency in config.concurrency
        ]
    meta["foreign_cores_levels"] = noise["cores"]
    meta["load_average_after_load"] = os.getloadavg()
    return levels


def _ceiling(
    config: BenchConfig,
    repository: Repository | None,
    image: bytes,
    batch: int,
    meta: dict[str, Any],
    say: Reporter,
) -> list[Ceiling]:
    """The in-process trials and the machine's compute rate (into ``meta``)."""
    if repository is None:
        raise UsageError(
            f"{config.repository}: no repository to measure the in-process ceiling with",
            hint="pass --repo DIR (the repository served), or --no-ceiling",
        )
    batches = sorted({1, batch})
    cores = os.cpu_count() or 1
    say(f"in-process ceiling: batch {batches}, 1 worker x {cores} threads and {cores} x 1")
    seconds = max(config.duration / 4, 1.0)
    with foreign_load() as noise:
        found = ceilings(repository, image, batches, seconds)
    meta["foreign_cores_ceiling"] = noise["cores"]
    say("compute rate: the best compiled kernel (tf.function matmul and convolution)")
    rate = measure_compute_rate()
    meta["compute"] = {"gflops": rate.gflops, "kernel": rate.kernel, "kernels": rate.kernels}
    meta["gflop_per_image"] = INCEPTION_GFLOP
    return found


def run_bench(config: BenchConfig, say: Reporter = quiet) -> BenchResult:
    """Run every level, then the in-process ceiling; check the targets."""
    payload = _payload(config)
    meta = _meta(config, payload.meta)
    first = asyncio.run(_first_request(config, next(iter(payload.requests.values()))))
    meta["first_request_ms"] = round(first * 1000, 1)
    levels = _levels(config, payload, meta)
    best = best_level(levels)
    repository = served_repository(config.repository) if payload.image is not None else None
    batch, source = 1, "-"
    if best and payload.image is not None:
        batch, source = server_batch(best, dynamic_batching(repository))
    meta["server_batch"] = {"batch": batch, "source": source}
    found: list[Ceiling] = []
    if config.ceiling and payload.image is None:
        say("no in-process ceiling for a request body: it measures our ensemble's pipeline")
    elif config.ceiling and payload.image is not None:
        found = _ceiling(config, repository, payload.image, batch, meta, say)
    top = best_ceiling(found)
    meta["ceiling"] = top.describe() if top else None
    checks = [throughput_check(best, top), *format_checks(levels), error_check(levels)]
    return BenchResult(meta, levels, found, checks)
