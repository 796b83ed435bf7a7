"""The ``tritonship`` command line: one module per command group, one failure boundary.

Each group (:mod:`.doctor`, :mod:`.repository`, :mod:`.local`, :mod:`.invoke`, :mod:`.cloud`,
:mod:`.observe`, :mod:`.bench`, :mod:`.traffic_loop`) adds its commands to the parser; a
command parses its arguments into the library's options, calls the library and prints.
:func:`main` is the only place an exception reaches the user: as ``tritonship: error:`` and
the error rendered by :func:`tritonship.errors.render` (one line with its hint, details
below), and an exit code; the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tritonship import __version__
from tritonship.cli import bench, cloud, doctor, invoke, local, observe, repository, traffic_loop
from tritonship.cli.common import Command
from tritonship.errors import TritonshipError, render
from tritonship.sagemaker import settings

GROUPS = (doctor, repository, local, invoke, cloud, observe, bench, traffic_loop)
DEBUG_HINT = "run again with --debug for the traceback"
INTERRUPTED = 130
#: What a shell reports for a process killed by SIGPIPE (128 + 13).
CLOSED_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="tritonship",
        description="Build, validate, serve and ship a Triton DALI + Inception V3 ensemble.",
    )
    parser.add_argument("--version", action="version", version=f"tritonship {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def exit_code(err: BaseException) -> int:
    """A TritonshipError's own code (2 for a UsageError); 1 for anything else."""
    return err.exit_code if isinstance(err, TritonshipError) else 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tritonship`` console script: the one failure boundary."""
    settings.quiet_tensorflow()  # before any command loads TensorFlow
    args = build_parser().parse_args(argv)  # usage errors: argparse exits 2
    command: Command = args.func
    try:
        return command(args)
    except KeyboardInterrupt:
        print("tritonship: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `tritonship invoke ... | head`: the reader left, not an error
        _silence_stdout()
        return CLOSED_PIPE
    except Exception as err:
        if args.debug:
            raise
        print(f"tritonship: error: {render(err, DEBUG_HINT)}", file=sys.stderr)
        return exit_code(err)
