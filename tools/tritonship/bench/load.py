"""The closed-loop load generator: C workers, each sending the next request on an answer.

Request bodies are encoded once; the HTTP sender is one aiohttp session on one asyncio
thread (a request costs the client well under a millisecond of CPU). boto3 is
synchronous, so the SageMaker sender runs InvokeEndpoint in a pool of C threads, each
with its own client (its own connection pool).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from tritonship.bench.stats import Sample, Window
from tritonship.sagemaker.client import SageMakerTransport
from tritonship.sagemaker.wire import EncodedRequest, error_text

#: Give up on one request after this long (SageMaker gives a container 60 s).
REQUEST_TIMEOUT = 70.0
#: Error messages are cut to this length.
MESSAGE_CHARS = 200


class SendError(Exception):
    """One request failed; the message is what the report shows."""


@dataclass(frozen=True)
class Reply:
    """An answer's body and Content-Type."""

    body: bytes
    content_type: str | None


class Sender(Protocol):
    """Sends the pre-encoded request once per call (raises SendError on failure)."""

    target: str

    async def send(self) -> Reply:
        """One request, one answer."""

    async def close(self) -> None:
        """Release connections or threads."""


class HttpSender:
    """POST ``<url>/invocations`` with aiohttp (the container API)."""

    def __init__(self, url: str, request: EncodedRequest, concurrency: int) -> None:
        """Open a session with up to ``concurrency`` keep-alive connections."""
        self.target = f"{url.rstrip('/')}/invocations"
        self.request = request
        connector = aiohttp.TCPConnector(limit=concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        )

    async def send(self) -> Reply:
        """One POST; a non-200 answer or a transport error raises SendError."""
        headers = {"Content-Type": self.request.content_type}
        try:
            async with self._session.post(
                self.target, data=self.request.body, headers=headers
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise SendError(f"{type(err).__name__}: {err}"[:MESSAGE_CHARS]) from err
        if response.status != 200:
            text = error_text(body.decode("utf-8", errors="replace"))
            raise SendError(f"HTTP {response.status}: {text}"[:MESSAGE_CHARS])
        return Reply(body, response.headers.get("Content-Type"))

    async def close(self) -> None:
        """Close the session."""
        await self._session.close()


class SageMakerSender:
    """boto3 InvokeEndpoint in a thread pool (one client per thread)."""

    def __init__(
        self,
        endpoint: str,
        request: EncodedRequest,
        concurrency: int,
        transport: Callable[[], SageMakerTransport] | None = None,
        target_model: str | None = None,
    ) -> None:
        """``transport`` makes one client per thread (default: SageMakerTransport(endpoint)).

        ``target_model`` names the multi-model endpoint's model every request goes to.
        """
        model = f" model {target_model}" if target_model else ""
        self.target = f"endpoint {endpoint}{model}"
        self.request = request
        self._make = transport or (lambda: SageMakerTransport(endpoint, target_model=target_model))
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench")

    def _send_sync(self) -> Reply:
        if not hasattr(self._local, "transport"):
            self._local.transport = self._make()
        try:
            answer = self._local.transport.send(self.request)
        except Exception as err:  # InvocationError, botocore errors: all reported
            raise SendError(str(err)[:MESSAGE_CHARS]) from err
        return Reply(answer.body, answer.content_type)

    async def send(self) -> Reply:
        """One InvokeEndpoint on a pool thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._send_sync)

    async def close(self) -> None:
        """Stop the threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class LevelRun:
    """The raw outcome of one level: every request, the measured window, client CPU."""

    samples: list[Sample]
    window: Window
    client_cpu: float


Tick = Callable[[float, list[Sample]], None]


async def closed_loop(
    sender: Sender,
    concurrency: int,
    warmup: float,
    duration: float,
    images: int = 1,
    tick: Tick | None = None,
) -> LevelRun:
    """Run ``concurrency`` workers for ``warmup + duration`` s; measure after the warm-up."""
    samples: list[Sample] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    stop_at = started + warmup + duration

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            samples.append(await _one(sender, images))

    ticker = asyncio.create_task(_ticker(started, stop_at, samples, tick))
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ticker.cancel()
    wall = time.perf_counter() - started
    cpu = (time.process_time() - cpu_started) / wall if wall > 0 else 0.0
    return LevelRun(samples, Window(started + warmup, stop_at), cpu)


async def _one(sender: Sender, images: int) -> Sample:
    """Time one request."""
    start = time.perf_counter()
    try:
        reply = await sender.send()
    except SendError as err:
        return Sample(start, time.perf_counter(), images, 0, str(err))
    return Sample(start, time.perf_counter(), images, len(reply.body))


async def _ticker(
    started: float, stop_at: float, samples: list[Sample], tick: Tick | None, every: float = 0.25
) -> None:
    """Call ``tick(elapsed, samples)`` a few times a second (the live display)."""
    while tick is not None and time.perf_counter() < stop_at:
        tick(time.perf_counter() - started, samples)
        await asyncio.sleep(every)
