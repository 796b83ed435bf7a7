"""The native server is reachable on loopback only: read from the kernel's socket tables.

Nothing here sends traffic anywhere but 127.0.0.1: the listening sockets are read from
``/proc/net/tcp`` and ``/proc/net/tcp6`` (this machine's network namespace) and from the
server's own ``/proc/<pid>/net/tcp`` (its private namespace).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import Endpoint
from tritonship.local.native import NativeEngine

LISTEN = "0A"
LOOPBACK_V4 = "0100007F"  # 127.0.0.1, little-endian hex as /proc prints it


def listeners(table: Path) -> dict[int, set[str]]:
    """Listening TCP sockets of one ``/proc/.../net/tcp[6]`` table: port -> local addresses."""
    found: dict[int, set[str]] = {}
    if not table.exists():
        return found
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != LISTEN:
            continue
        address, port = fields[1].split(":")
        found.setdefault(int(port, 16), set()).add(address)
    return found


def host_listeners() -> dict[int, set[str]]:
    both = listeners(Path("/proc/net/tcp"))
    for port, addresses in listeners(Path("/proc/net/tcp6")).items():
        both.setdefault(port, set()).update(addresses)
    return both


@pytest.fixture()
def engine(endpoint: Endpoint):
    if not isinstance(endpoint.engine, NativeEngine):
        pytest.skip("not the native engine (the Docker engine publishes on 127.0.0.1 itself)")
    if not endpoint.engine.confined:
        assert "listens on ALL network interfaces" in endpoint.engine.exposure()
        pytest.skip(f"cannot be confined here: {endpoint.engine.exposure()}")
    return endpoint.engine


def served_ports(endpoint: Endpoint) -> list[int]:
    ports = [endpoint.engine.port]
    if endpoint.metrics_url:
        ports.append(int(re.search(r":(\d+)/", endpoint.metrics_url).group(1)))
    return ports


def test_every_server_port_listens_on_loopback_only(engine, endpoint: Endpoint):
    table = host_listeners()
    for port in served_ports(endpoint):
        assert table.get(port) == {LOOPBACK_V4}, (port, table.get(port))


def test_the_server_lives_in_its_own_network_namespace(engine, endpoint: Endpoint):
    pid = engine.pid
    assert "tritonserver" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert Path(f"/proc/{pid}/ns/net").readlink() != Path("/proc/self/ns/net").readlink()
    inside = listeners(Path(f"/proc/{pid}/net/tcp"))
    assert engine.port in inside, "the server listens in its namespace (every interface there)"
    for stub in engine.stub_pids():  # the backend stubs share the server's namespace
        assert Path(f"/proc/{stub}/ns/net").readlink() == Path(f"/proc/{pid}/ns/net").readlink()


def test_the_banner_says_loopback(engine):
    assert engine.exposure().startswith("listening on 127.0.0.1 only")
