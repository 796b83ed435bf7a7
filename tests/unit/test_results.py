"""Stamped result files: the machine stamp, the bench's and the hardening run's tables."""

from __future__ import annotations

import http.server
import os
import platform
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import QuietHandler
from tests.unit.bench.test_bench import fake_result
from tritonship import cli, results
from tritonship.bench import hostile
from tritonship.bench.report import (
    default_results_dir,
    machine_stamp,
    server_version,
    stamp_markdown,
    write_report,
    write_results,
)
from tritonship.local import native
from tritonship.paths import checkout_root


def proc_value(path: str, key: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in {path}")


def test_machine_stamp_describes_this_machine():
    stamp = machine_stamp(date="2000-01-01 00:00:00 +0000")
    assert list(stamp) == [
        "date",
        "cores",
        "cpu",
        "memory",
        "os",
        "python",
        "tritonserver",
        "tritonship",
    ]
    assert stamp["date"] == "2000-01-01 00:00:00 +0000"
    assert stamp["cores"] == str(os.cpu_count())
    assert stamp["cpu"] == proc_value("/proc/cpuinfo", "model name")
    kib = int(proc_value("/proc/meminfo", "MemTotal").split()[0])
    assert stamp["memory"] == f"{kib / 2**20:.1f} GiB"
    assert platform.release() in stamp["os"]
    assert stamp["python"] == platform.python_version()
    assert stamp["tritonserver"] == "unknown"
    assert machine_stamp(server="2.51.0")["tritonserver"] == "2.51.0"
    assert machine_stamp()["date"][:2] == "20"


def test_stamp_markdown_is_a_two_column_table():
    text = stamp_markdown({"cores": "2", "cpu": "a | b"})
    assert text.splitlines() == [
        "| measured on | |",
        "|---|---|",
        "| cores | 2 |",
        "| cpu | a / b |",
    ]


def test_server_version_only_for_the_native_engine_s_url(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(native, "read_state", lambda: {"url": "http://127.0.0.1:8080"})
    version = server_version("http://127.0.0.1:8080/")
    assert version is not None and version.startswith("2.51.0 (native engine, nvidia-pytriton ")
    assert server_version("http://127.0.0.1:9090") is None
    assert server_version("endpoint demo") is None
    monkeypatch.setattr(native, "read_state", lambda: None)
    assert server_version("http://127.0.0.1:8080") is None


def test_write_report_keeps_a_stamped_copy_only_when_asked(tmp_path: Path):
    assert len(write_report(fake_result(), tmp_path / "out")) == 4
    assert not (tmp_path / "results").exists()
    paths = write_report(fake_result(), tmp_path / "out", results_dir=tmp_path / "results")
    assert len(paths) == 5 and paths[4].parent == tmp_path / "results"
    assert paths[4].name.startswith("bench-") and paths[4].suffix == ".md"
    lines = paths[4].read_text().splitlines()
    assert lines[0] == "# tritonship bench: http://127.0.0.1:1"
    assert lines[2] == "| measured on | |"
    assert "| date | today |" in lines  # the run's own date
    assert f"| cores | {os.cpu_count()} |" in lines
    assert "| binary | 1 | 20.0 | 35 |" in paths[4].read_text()
    assert paths[3].read_text().splitlines()[0] == lines[0], "bench.md is not stamped"


def test_results_in_the_same_second_do_not_overwrite(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(results.time, "strftime", lambda *args: "20000101-000000")
    first = write_results(tmp_path, "hardening", "| a |\n", {"cores": "2"})
    second = write_results(tmp_path, "hardening", "| b |\n", {"cores": "2"})
    assert [first.name, second.name] == [
        "hardening-20000101-000000.md",
        "hardening-20000101-000000-2.md",
    ]
    assert (
        first.read_text() == "# hardening\n\n| measured on | |\n|---|---|\n| cores | 2 |\n\n| a |\n"
    )
    assert second.read_text().endswith("| b |\n")


def test_results_go_to_docs_results_in_a_checkout():
    root = checkout_root()
    assert root is not None, "the tests run from a checkout"
    assert default_results_dir() == root / "docs" / "results"


class Refuse(QuietHandler):
    """Answers every POST with 400 and a JSON error."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        self.reply(400, b'{"error": "refused by the stub"}')


@pytest.fixture()
def refusing_url() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_hardening_run_prints_and_keeps_its_table(refusing_url: str, tmp_path: Path, capsys):
    assert cli.main(["bench", "hostile", "--url", refusing_url, "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    [kept] = tmp_path.glob("hardening-*.md")
    assert printed.rstrip().endswith(f"wrote {kept}")
    text = kept.read_text()
    assert text.startswith(f"# tritonship hardening: hostile requests against {refusing_url}\n")
    assert f"| cores | {os.cpu_count()} |" in text
    rows = [line for line in text.splitlines() if line.startswith("| empty body |")]
    assert rows == ["| empty body | 400 | - | refused by the stub |"]
    table = printed.split("\nwrote ")[0].strip()
    assert table in text and len(table.splitlines()) == len(hostile.corpus()) + 2


def test_hardening_run_without_results_writes_nothing(refusing_url: str, tmp_path: Path, capsys):
    argv = ["--url", refusing_url, "--results", str(tmp_path), "--no-results"]
    assert cli.main(["bench", "hostile", *argv]) == 0
    assert "wrote" not in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
