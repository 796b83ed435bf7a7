"""One bench run: the served levels (format x concurrency), then the in-process ceiling.

The ceiling runs after the load, never during it: on a 2-core machine the two would
share the cores and both numbers would be wrong.
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
from tritonship.bench.display import Display
from tritonship.bench.load import (
    HttpSender,
    LevelRun,
    SageMakerSender,
    Sender,
    SendError,
    Tick,
    closed_loop,
)
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
    photo = Image.fromarray(photo_array("rocket")).resize(PHOTO_SIZE, Image.BILINEAR)
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


def make_sender(config: BenchConfig, request: EncodedRequest, concurrency: int) -> Sender:
    """The aiohttp sender (--url) or the boto3 one (--endpoint)."""
    if config.endpoint:
        return SageMakerSender(config.endpoint, request, concurrency)
    return HttpSender(config.url or "http://127.0.0.1:8080", request, concurrency)


async def _probe(sender: Sender, images: int) -> None:
    """One request before the level: the endpoint must answer with ``images`` softmax rows."""
    try:
        reply = await sender.send()
    except SendError as err:
        raise TritonshipError(
            f"{sender.target}: {err}",
            hint="is the endpoint running? start it with: tritonship serve",
        ) from err
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
        await _probe(sender, 1)
        return time.perf_counter() - started
    finally:
        await sender.close()


async def _load(
    config: BenchConfig, request: EncodedRequest, concurrency: int, tick: Tick
) -> LevelRun:
    """Probe, then run the closed loop at one concurrency."""
    sender = make_sender(config, request, concurrency)
    try:
        await _probe(sender, 1)
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


def dynamic_batching(repository: Path) -> bool:
    """Whether the classifier batches requests together (a ``dynamic_batching`` block)."""
    from tritonship.repository.validate import classifier, load_repository

    try:
        model = classifier(load_repository(repository))
    except TritonshipError:
        return False
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


def _meta(config: BenchConfig, image_name: str) -> dict[str, Any]:
    """What the run was: target, machine, image, timings, load before the run."""
    return {
        "target": f"endpoint {config.endpoint}" if config.endpoint else config.url,
        "transport": "boto3 sagemaker-runtime (thread pool)"
        if config.endpoint
        else "aiohttp (asyncio)",
        "machine": machine(),
        "image": image_name,
        "formats": list(config.formats),
        "concurrency": config.concurrency,
        "duration": config.duration,
        "warmup": config.warmup,
        "repository": str(config.repository),
        "metrics_url": config.metrics_url,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "tritonship": __version__,
        "load_average_before": os.getloadavg(),
    }


def run_bench(config: BenchConfig, say: Reporter = quiet) -> BenchResult:
    """Run every level, then the in-process ceiling; check the targets."""
    image, name = _image(config)
    meta = _meta(config, name)
    bodies = {fmt: encode_as([image], fmt) for fmt in config.formats}
    first = asyncio.run(_first_request(config, bodies[config.formats[0]]))
    meta["first_request_ms"] = round(first * 1000, 1)
    display = Display(config.progress)
    with display.running():
        levels = [
            run_level(config, fmt, bodies[fmt], concurrency, display)
            for fmt in config.formats
            for concurrency in config.concurrency
        ]
    meta["load_average_after_load"] = os.getloadavg()
    best = best_level(levels)
    batch, source = server_batch(best, dynamic_batching(config.repository)) if best else (1, "-")
    meta["server_batch"] = {"batch": batch, "source": source}
    found = []
    if config.ceiling:
        say(f"in-process ceiling at batch {sorted({1, batch})} (server batch from {source})")
        found = ceilings(config.repository, image, [1, batch], max(config.duration / 2, 1.0))
    checks = [throughput_check(best, found, batch), *format_checks(levels), error_check(levels)]
    return BenchResult(meta, levels, found, checks)
