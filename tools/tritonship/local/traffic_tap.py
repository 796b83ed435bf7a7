"""What the local runtime does with the calls it has answered: capture them, mirror them.

``serve --capture DIR`` (:mod:`.capture`) and ``serve --mirror URL`` (:mod:`.mirror`) are
options of the runtime process; :class:`TrafficOptions` carries them from ``serve`` to its
command line, and :class:`Tap` is what the runtime calls after each answer it sent.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tritonship.errors import UsageError
from tritonship.local.capture import CaptureSettings, CaptureWriter, exchange
from tritonship.local.mirror import LiveCall, Mirror, MirrorSettings
from tritonship.sagemaker.agreement import ATOL, RTOL, Tolerance

#: The mirror's log, in the run folder unless ``--mirror-log`` says otherwise.
MIRROR_LOG = "mirror.jsonl"


@dataclass(frozen=True)
class TrafficOptions:
    """``serve --capture DIR [--capture-percent P] [--mirror URL [--mirror-percent P]]``."""

    capture_dir: Path | None = None
    capture_percent: float = 100.0
    mirror_url: str | None = None
    mirror_percent: float = 100.0
    mirror_log: Path | None = None

    def __post_init__(self) -> None:
        """Refuse shares outside 1-100 and a mirror URL that is not HTTP."""
        for option, value in (
            ("--capture-percent", self.capture_percent),
            ("--mirror-percent", self.mirror_percent),
        ):
            if not 0 < value <= 100:
                raise UsageError(f"{option} {value:g} is not a share of requests (1-100)")
        if self.mirror_url and not self.mirror_url.startswith(("http://", "https://")):
            raise UsageError(
                f"--mirror {self.mirror_url!r} is not a URL",
                hint="the second server's container API, e.g. http://127.0.0.1:9090",
            )

    @property
    def active(self) -> bool:
        """Whether anything is captured or mirrored."""
        return bool(self.capture_dir or self.mirror_url)

    def runtime_args(self, run_dir: Path) -> list[str]:
        """The runtime's command-line options (absolute paths: it may run elsewhere)."""
        args: list[str] = []
        if self.capture_dir:
            args += ["--capture-dir", str(self.capture_dir.resolve())]
            args += ["--capture-percent", f"{self.capture_percent:g}"]
        if self.mirror_url:
            log = self.mirror_log or run_dir / MIRROR_LOG
            args += ["--mirror", self.mirror_url, "--mirror-percent", f"{self.mirror_percent:g}"]
            args += ["--mirror-log", str(log.resolve())]
        return args

    def describe(self, endpoint: str, variant: str, run_dir: Path) -> list[str]:
        """Where captures and comparisons go, for ``serve``'s banner."""
        lines = []
        if self.capture_dir:
            where = self.capture_dir / endpoint / variant
            lines.append(
                f"data capture: {self.capture_percent:g}% of InvokeEndpoint calls to "
                f"{where}/yyyy/mm/dd/hh/*.jsonl (tritonship capture decode {self.capture_dir})"
            )
        if self.mirror_url:
            log = self.mirror_log or run_dir / MIRROR_LOG
            lines.append(
                f"mirror: a copy of {self.mirror_percent:g}% of InvokeEndpoint calls to "
                f"{self.mirror_url}/invocations, compared in {log}"
            )
        return lines


def check_runtime(options: TrafficOptions | None, runtime_port: int) -> None:
    """Capture and mirror happen in the local runtime: refuse them without one."""
    if options is not None and options.active and not runtime_port:
        raise UsageError(
            "--capture and --mirror act on InvokeEndpoint calls, and --runtime-port 0 starts "
            "no local runtime",
            hint="give --runtime-port a port (default 8081) and send requests there",
        )


class Answered(Protocol):
    """The runtime's reply to one call (:class:`tritonship.local.runtime.Reply`)."""

    @property
    def status(self) -> int:
        """The HTTP status."""

    @property
    def headers(self) -> dict[str, str]:
        """The reply's headers."""

    @property
    def body(self) -> bytes:
        """The reply's body."""


class Tap:
    """Captures and mirrors answered calls; a Tap with neither does nothing."""

    def __init__(self, capture: CaptureWriter | None = None, mirror: Mirror | None = None):
        """Either part may be None."""
        self.capture = capture
        self.mirror = mirror

    def observe(
        self,
        body: bytes,
        content_type: str | None,
        reply: Answered,
        started: float,
        inference_id: str | None = None,
    ) -> None:
        """Capture and mirror a reply about to be sent, when it is an answer (200).

        ``started`` is the ``time.perf_counter()`` of the call's arrival.
        """
        if reply.status != 200 or (self.capture is None and self.mirror is None):
            return
        seconds = time.perf_counter() - started
        answer_type = reply.headers.get("Content-Type")
        call = exchange(body, content_type, reply.body, answer_type, inference_id)
        if self.capture is not None:
            self.capture.capture(call)
        if self.mirror is not None:
            self.mirror.submit(
                LiveCall(
                    call.event_id, body, content_type, reply.body, answer_type, seconds, call.when
                )
            )

    def close(self) -> None:
        """Close the capture file and stop the mirror."""
        if self.capture is not None:
            self.capture.close()
        if self.mirror is not None:
            self.mirror.close()


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """The runtime process's options for capture and mirror."""
    parser.add_argument("--capture-dir", type=Path, help="capture records under this folder")
    parser.add_argument("--capture-percent", type=float, default=100.0)
    parser.add_argument("--mirror", help="a second server's container API to mirror calls to")
    parser.add_argument("--mirror-percent", type=float, default=100.0)
    parser.add_argument("--mirror-log", type=Path, help="the mirror's JSON Lines log")
    parser.add_argument("--mirror-rtol", type=float, default=RTOL)
    parser.add_argument("--mirror-atol", type=float, default=ATOL)


def tap_from_args(args: argparse.Namespace, endpoint: str, variant: str) -> Tap:
    """The runtime's :class:`Tap` from its parsed options."""
    capture = None
    if args.capture_dir:
        settings = CaptureSettings(args.capture_dir, endpoint, variant, args.capture_percent)
        capture = CaptureWriter(settings)
    mirror = None
    if args.mirror:
        log = args.mirror_log or Path(MIRROR_LOG)
        tolerance = Tolerance(args.mirror_rtol, args.mirror_atol)
        mirror = Mirror(MirrorSettings(args.mirror, log, args.mirror_percent, tolerance))
    return Tap(capture, mirror)
