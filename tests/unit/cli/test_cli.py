"""The command line without a server: the CLI contract's commands and the one failure boundary."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tritonship import cli
from tritonship.cli import local, repository
from tritonship.errors import TritonshipError, UsageError
from tritonship.local.engine import EngineError

# Every command of the CLI contract (docs: DESIGN.md) that exists today, with its options.
CONTRACT = {
    "build": ["--repo", "m", "--weights", "random", "--device", "cpu"],
    "validate": ["--repo", "m", "--image-tag", "24.09-py3"],
    "serve": [
        *["--engine", "docker", "--profile", "cpu", "--image", "img:1", "--repo", "m"],
        *["--port", "9090", "--detach"],
    ],
    "stop": ["--engine", "docker"],
    "invoke": ["a.jpg", "b.jpg", "--url", "http://h:1", "--format", "json", "--top-k", "3"],
    "package": ["--repo", "m", "--out", "dist/x.tar.gz", "--image-tag", "24.09-py3"],
    "promote": [
        *["--endpoint", "e", "--bucket", "b", "--role", "arn:aws:iam::123456789012:role/r"],
        *["--instance-type", "ml.m5.xlarge", "--instance-count", "2", "--image-tag", "t"],
        *["--autoscale", "1:4", "--dry-run"],
    ],
    "teardown": ["--endpoint", "e", "--delete-artifacts"],
    "bench": [
        *["--endpoint", "e", "--concurrency", "1,2", "--duration", "3", "--format", "json"],
        *["--out", "o"],
    ],
}


@pytest.mark.parametrize("command", CONTRACT)
def test_every_contract_command_parses_its_options(command: str):
    args = cli.build_parser().parse_args([command, *CONTRACT[command]])
    assert args.command == command
    assert args.func.__name__ == f"cmd_{command}"
    assert args.debug is False


def test_contract_values_arrive_typed():
    parse = cli.build_parser().parse_args
    serve = parse(["serve", *CONTRACT["serve"]])
    assert (serve.engine, serve.profile, serve.port, serve.detach) == ("docker", "cpu", 9090, True)
    assert serve.repo == Path("m")
    invoke = parse(["invoke", *CONTRACT["invoke"], "--json"])
    assert invoke.images == [Path("a.jpg"), Path("b.jpg")] and invoke.top_k == 3 and invoke.json
    promote = parse(["promote", *CONTRACT["promote"]])
    assert promote.instance_count == 2 and promote.autoscale == "1:4" and promote.dry_run


def test_defaults_match_the_mission():
    parse = cli.build_parser().parse_args
    serve = parse(["serve"])
    assert (serve.engine, serve.port, serve.runtime_port, serve.detach) == (
        "native",
        8080,
        8081,
        False,
    )
    assert serve.repo.name == "model_repository"
    invoke = parse(["invoke", "x.jpg"])
    assert (invoke.url, invoke.endpoint, invoke.format, invoke.top_k) == (None, None, "binary", 5)
    assert parse(["stop"]).engine == "native"
    assert parse(["bench"]).concurrency == "1,2,4,8,16"


@pytest.mark.parametrize(
    "argv",
    [
        ["invoke", "a.jpg", "--url", "u", "--endpoint", "e"],  # mutually exclusive
        ["serve", "--engine", "podman"],
        ["promote", "--endpoint", "e"],  # --bucket and --role are required
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: tritonship" in capsys.readouterr().err


def _raising(error: BaseException):
    def command(_args) -> int:
        raise error

    return command


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (TritonshipError("it broke", hint="do this"), "it broke (do this)", 1),
        (UsageError("--repo x is not a folder", hint="pass --repo DIR"), "--repo x", 2),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            "OSError: [Errno 28] No space left on device "
            "(run again with --debug for the traceback)",
            1,
        ),
        (
            ValueError("invalid literal for int()"),
            "ValueError: invalid literal for int() (run again with --debug for the traceback)",
            1,
        ),
        (RuntimeError(), "RuntimeError (run again with --debug for the traceback)", 1),
    ],
)
def test_an_error_is_one_line_with_its_exit_code(error, line, code, monkeypatch, capsys):
    monkeypatch.setattr(repository, "cmd_validate", _raising(error))
    assert cli.main(["validate"]) == code
    captured = capsys.readouterr()
    assert captured.err.startswith(f"tritonship: error: {line}")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_a_botocore_error_is_one_line(monkeypatch, capsys):
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CreateModel")
    monkeypatch.setattr(local, "cmd_stop", _raising(error))
    assert cli.main(["stop"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tritonship: error: ClientError: An error occurred (AccessDenied)")
    assert err.count("\n") == 1


def test_multi_line_errors_keep_the_hint_on_the_first_line(monkeypatch, capsys):
    findings = TritonshipError("repo has 2 problem(s):\n  a: bad\n  b: worse", hint="fix them")
    monkeypatch.setattr(repository, "cmd_validate", _raising(findings))
    assert cli.main(["validate"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "tritonship: error: repo has 2 problem(s): (fix them)",
        "  a: bad",
        "  b: worse",
    ]
    died = EngineError("the server exited", hint="see below", log_tail="E0101 it failed")
    monkeypatch.setattr(repository, "cmd_validate", _raising(died))
    assert cli.main(["validate"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "tritonship: error: the server exited (see below)",
        "--- last server log lines ---",
        "E0101 it failed",
    ]


@pytest.mark.parametrize("argv", [["--debug", "validate"], ["validate", "--debug"]])
@pytest.mark.parametrize("error", [TritonshipError("it broke"), ValueError("bad")])
def test_debug_reraises_with_the_traceback(argv, error, monkeypatch):
    monkeypatch.setattr(repository, "cmd_validate", _raising(error))
    with pytest.raises(type(error)):
        cli.main(argv)


def test_ctrl_c_is_exit_130(monkeypatch, capsys):
    monkeypatch.setattr(local, "cmd_serve", _raising(KeyboardInterrupt()))
    assert cli.main(["serve"]) == 130
    assert capsys.readouterr().err == "tritonship: interrupted\n"


def test_invoke_of_a_missing_file_is_one_line(tmp_path: Path, capsys):
    missing = tmp_path / "missing.jpg"
    assert cli.main(["invoke", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"tritonship: error: cannot read {missing}: No such file or directory\n"
    )


def test_validate_of_a_missing_repository_is_a_usage_error(capsys):
    assert cli.main(["validate", "--repo", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tritonship: error: /nonexistent: no such model repository (")
    assert err.count("\n") == 1


def test_serve_refuses_a_broken_repository_before_any_server(repo_copy: Path, tmp_path, capsys):
    (repo_copy / "dali/config.pbtxt").write_text("this is not protobuf text {", encoding="utf-8")
    run = tmp_path / "run"
    argv = ["serve", "--repo", str(repo_copy), "--port", "1", "--runtime-port", "0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITONSHIP_RUN_DIR", str(run))
        assert cli.main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"tritonship: error: {repo_copy} has ")
    assert lines[0].endswith("(fix them (tritonship validate) or rebuild (tritonship build))")
    assert any("dali" in line for line in lines[1:])
    assert not run.exists(), "nothing started, nothing recorded"


def test_stop_with_nothing_running(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path))
    assert cli.main(["stop"]) == 0
    assert capsys.readouterr().out == "no native server is running\n"


def test_the_console_script_is_main():
    from importlib import metadata

    [script] = metadata.entry_points(group="console_scripts", name="tritonship")
    assert script.value == "tritonship.cli:main" and script.load() is cli.main


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path) -> None:
    """`tritonship ... | head`: a closed pipe ends quietly, as a killed-by-SIGPIPE program."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from tritonship import cli\n"
        "from tritonship.cli import repository\n"
        "def flood(args):\n"
        "    for _ in range(100000):\n"
        "        print('x' * 100)\n"
        "    return 0\n"
        "repository.cmd_validate = flood\n"
        "sys.exit(cli.main(['validate']))\n"
    )
    flood = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert flood.stdout is not None
    flood.stdout.read(10)
    flood.stdout.close()
    _, err = flood.communicate(timeout=60)
    assert flood.returncode == 141
    assert b"error" not in err and b"Traceback" not in err
