"""Planted fake credentials never reach a server's environment, its logs or our output;
a packaged archive is served exactly as packaged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tritonship import cli
from tritonship.local.engine import free_port
from tritonship.local.native import native_run_dir, read_state
from tritonship.local.process import children
from tritonship.local.runtime_proxy import recorded_runtime
from tritonship.samples import photo_jpeg

FAKE_KEY_ID = "AKIAFAKEPLANTED12345"
FAKE_SECRET = "fakePlantedSecretKey/doNotLeak+0123456789"  # noqa: S105 - planted fake


@pytest.fixture()
def served(built_repository: Path, tmp_path: Path, monkeypatch, capsys) -> Iterator[dict]:
    """``tritonship serve --detach`` with fake credentials in its environment."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    port, runtime_port = free_port(), free_port()
    assert (
        cli.main(
            [
                "serve",
                "--repo",
                str(built_repository),
                "--port",
                str(port),
                "--runtime-port",
                str(runtime_port),
                "--detach",
            ]
        )
        == 0
    )
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "runtime": f"http://127.0.0.1:{runtime_port}",
            "output": capsys.readouterr(),
        }
    finally:
        cli.main(["stop"])


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_servers_never_hold_or_log_the_credentials(served, capsys):
    requests.post(f"{served['url']}/invocations", data=b"{bad", timeout=30)
    client = boto3.client(
        "sagemaker-runtime", endpoint_url=served["runtime"], region_name="us-east-1"
    )  # signs with the planted credentials
    with pytest.raises(client.exceptions.ModelError):
        client.invoke_endpoint(
            EndpointName="tritonship-local", Body=b"{bad", ContentType="application/json"
        )
    server = int(read_state()["pid"])
    proxy = int(recorded_runtime()["pid"])
    for pid in (server, proxy, *children(server)):
        assert FAKE_SECRET.encode() not in environ_of(pid), pid
        assert FAKE_KEY_ID.encode() not in environ_of(pid), pid
    for log in native_run_dir().parent.rglob("*.log"):
        text = log.read_text(errors="replace")
        assert FAKE_SECRET not in text and FAKE_KEY_ID not in text, log
    out = served["output"].out + served["output"].err + "".join(capsys.readouterr())
    assert FAKE_SECRET not in out and FAKE_KEY_ID not in out


def test_runtime_and_container_bind_loopback_only(served):
    from urllib.parse import urlparse

    assert urlparse(served["runtime"]).hostname == "127.0.0.1"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    port = f"{urlparse(served['runtime']).port:04X}"
    listening = [line.split()[1] for line in lines if line.split()[3] == "0A"]
    assert f"0100007F:{port}" in listening, "the runtime listens on 127.0.0.1 only"


def test_a_packaged_archive_is_served_as_packaged(packaged, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    port = free_port()
    try:
        assert (
            cli.main(
                [
                    "serve",
                    "--archive",
                    str(packaged.archive),
                    "--port",
                    str(port),
                    "--runtime-port",
                    "0",
                    "--detach",
                ]
            )
            == 0
        )
        assert "serving the unpacked archive" in capsys.readouterr().err
        photo = tmp_path / "cat.jpg"
        photo.write_bytes(photo_jpeg("chelsea"))
        repo = next((tmp_path / "run" / "archives").iterdir())
        assert (
            cli.main(
                [
                    "invoke",
                    str(photo),
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--repo",
                    str(repo),
                    "--json",
                ]
            )
            == 0
        )
    finally:
        cli.main(["stop"])
