"""Keep the native tritonserver off the network and show it the container's paths.

Triton has no address option for its SageMaker frontend: it listens on every interface, so
a native server on a workstation would answer the whole network, unauthenticated. Where
the OS allows unprivileged user namespaces (``unshare --user --map-root-user --net
--mount``), the engine instead:

1. binds each port the server will use on 127.0.0.1, in its own (the host's) namespace;
2. starts ``unshare ... python -m tritonship.local.confine --forward FD:PORT ...
   [--mkdir DIR] [--bind-ro HOST CONTAINER] -- tritonserver ...`` with those sockets
   inherited: a new user, network and mount namespace whose only interface is loopback;
3. this module brings that loopback up, sets up the container's paths in the private mount
   namespace (:mod:`tritonship.local.mounts`: the repository read-only at
   ``/opt/ml/model``, the models folder at ``/opt/ml/models``, ``/tmp/sagemaker``; nothing
   is created on the host), forks a forwarder that accepts on the inherited host sockets
   and connects to the same port inside the namespace, and execs tritonserver (which keeps
   the process id the engine knows).

Nothing outside the machine can reach the server; clients on the machine use
``127.0.0.1:PORT`` as before, and the server's messages name the paths they name in
production. Where these namespaces are not permitted (:func:`unavailable_reason`) the
engine refuses to start unless the user opts out explicitly (``serve --bind-all``); a step
of this wrapper that fails anyway exits with one line and a hint in the server log, never
a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tritonship.local import mounts
from tritonship.local.process import die_with_parent
from tritonship.sagemaker import settings

T = TypeVar("T")
#: Set TRITONSHIP_NATIVE_CONFINE=0 to run the native server without a namespace.
DISABLE_VARIABLE = settings.CONFINE_VARIABLE
UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--mount")
#: This module, run as the wrapper between ``unshare`` and tritonserver.
WRAPPER = "tritonship.local.confine"
#: Seconds the probe (a Python start in the namespaces) may take.
PROBE_TIMEOUT = 30
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_CHUNK = 1 << 16
#: The wrapper's exit status when a confinement step fails (the server never started).
CONFINE_FAILED = 125
FAILED_HINT = (
    "the native engine's private namespaces are not permitted here: use --engine docker, "
    "or serve on every interface with --bind-all"
)
#: Flags that name a port tritonserver listens on, with the flag that enables it.
_PORT_FLAGS = {
    "--sagemaker-port": ("--allow-sagemaker", "8080"),
    "--http-port": ("--allow-http", "8000"),
    "--grpc-port": ("--allow-grpc", "8001"),
    "--metrics-port": ("--allow-metrics", "8002"),
}


@functools.cache
def unavailable_reason() -> str | None:
    """Why the server cannot be confined here, or None when it can.

    The probe does what a confined start does, in miniature: it enters the user, network
    and mount namespaces, brings ``lo`` up (which needs CAP_NET_ADMIN in the new user
    namespace), listens on 127.0.0.1 there and connects to itself, covers a scratch folder
    with a tmpfs and binds a folder read-only (:func:`tritonship.local.mounts.probe_plan`).
    Cached per process.
    """
    if settings.confinement_disabled():
        return f"{DISABLE_VARIABLE}=0"
    if shutil.which(UNSHARE[0]) is None:
        return "the unshare command (util-linux) is not installed"
    with tempfile.TemporaryDirectory(prefix="tritonship-probe-") as scratch:
        command = [*UNSHARE, "--", sys.executable, "-m", WRAPPER, "--probe", scratch]
        try:
            probe = subprocess.run(
                command, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"unshare failed: {err}"
    if probe.returncode != 0:
        detail = probe.stderr.strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        return f"private user, network and mount namespaces are not permitted here ({detail[0]})"
    return None


def listening_ports(command: Sequence[str]) -> list[int]:
    """The TCP ports a tritonserver command line listens on (enabled frontends only)."""
    flags = dict(arg.split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
    ports = []
    for port_flag, (allow_flag, default) in _PORT_FLAGS.items():
        enabled = flags.get(allow_flag, "true" if allow_flag == "--allow-http" else "false")
        if enabled.lower() in ("true", "1", "on"):
            ports.append(int(flags.get(port_flag, default)))
    return ports


def loopback_listener(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` in this (the host's) namespace, inheritable."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def confined_command(
    command: Sequence[str],
    listeners: dict[int, int],
    attached: bool,
    paths: mounts.PathPlan | None = None,
) -> list[str]:
    """``command`` run in new namespaces behind forwarders of ``{port: fd}``, seeing ``paths``."""
    forwards = [arg for port, fd in listeners.items() for arg in ("--forward", f"{fd}:{port}")]
    attach = ["--die-with-parent"] if attached else []
    return [
        *UNSHARE,
        "--",
        sys.executable,
        "-m",
        WRAPPER,
        *forwards,
        *attach,
        *(paths.args() if paths else []),
        "--",
        *command,
    ]


# --- inside the namespace ---------------------------------------------------------------------


def bring_loopback_up() -> None:
    """Set ``lo`` up: a new network namespace starts with it down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH22x", b"lo", 0)
        (flags,) = struct.unpack_from("16xH", fcntl.ioctl(probe, _SIOCGIFFLAGS, request))
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy one direction until end of stream, then half-close the other side."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with contextlib.suppress(OSError):
        while count := source.recv_into(buffer):
            target.sendall(view[:count])
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, port: int) -> None:
    """Connect ``client`` to the server's ``port`` inside the namespace, both ways."""
    with client:
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            return  # the server is not listening (yet): the client sees the connection close
        with upstream:
            upstream.settimeout(None)
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()


def _serve(listener: socket.socket, port: int) -> None:
    """Accept on one host-side listener forever, one relay thread per connection."""
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, port), daemon=True).start()


def forward_forever(listeners: dict[int, socket.socket]) -> None:
    """The forwarder process: relay every listener until the server (its parent) dies."""
    threads = [
        threading.Thread(target=_serve, args=(listener, port), daemon=True)
        for port, listener in listeners.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tritonship.local.confine")
    parser.add_argument("--forward", action="append", default=[], metavar="FD:PORT")
    parser.add_argument("--die-with-parent", action="store_true")
    parser.add_argument(
        "--bind-ro", nargs=2, action="append", default=[], metavar=("HOST", "CONTAINER")
    )
    parser.add_argument("--mkdir", action="append", default=[], metavar="DIR")
    parser.add_argument("--probe", metavar="SCRATCH", help="check the namespaces, then exit")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def check_loopback() -> None:
    """Listen on 127.0.0.1 and connect to it: what the forwarder does inside the namespace."""
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname(), timeout=5),
    ):
        pass


def _step(what: str, action: Callable[[], T]) -> T:
    """Run one confinement step; on failure one line with the hint, and exit."""
    try:
        return action()
    except OSError as err:
        print(  # noqa: T201 - the server log is this process's stderr
            f"tritonship: cannot confine tritonserver: {what} failed: {err} ({FAILED_HINT})",
            file=sys.stderr,
        )
        raise SystemExit(CONFINE_FAILED) from None


def probe(scratch: Path) -> None:
    """Inside the namespaces: what a confined start needs, on a scratch folder."""
    _step("bringing loopback up", bring_loopback_up)
    _step("listening on loopback", check_loopback)
    _step("setting up the container paths", lambda: mounts.apply(mounts.probe_plan(scratch)))
    _step("checking the container paths", lambda: mounts.check_probe(scratch))


def main(argv: Sequence[str] | None = None) -> None:
    """Bring loopback up, set the paths up, fork the forwarder, exec the server (same pid)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.probe:
        probe(Path(args.probe))
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    pairs = [item.split(":", 1) for item in args.forward]
    listeners = _step(
        "taking over the host's sockets",
        lambda: {int(port): socket.socket(fileno=int(fd)) for fd, port in pairs},
    )
    _step("bringing loopback up", bring_loopback_up)
    mounts.apply_or_exit(mounts.PathPlan.from_args(args.bind_ro, args.mkdir))
    if os.fork() == 0:  # the forwarder: a child of the server once it execs
        die_with_parent(signal.SIGKILL)
        forward_forever(listeners)
        os._exit(0)
    for listener in listeners.values():
        listener.close()
    if args.die_with_parent:  # entering the user namespace reset the engine's request
        die_with_parent(signal.SIGTERM)
    _step(f"starting {command[0]}", lambda: os.execv(command[0], command))


if __name__ == "__main__":
    main()
