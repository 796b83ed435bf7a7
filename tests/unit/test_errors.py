"""Errors carry what, where, hint and details as fields; one function renders them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonship.errors import TritonshipError, UsageError, Where, render
from tritonship.local.engine import EngineError, EngineTimeout
from tritonship.sagemaker.serve import load_env_file


def test_an_error_reads_where_what_and_hint_on_one_line_and_details_below() -> None:
    err = TritonshipError(
        "expected KEY=VALUE", hint="fix that line", where=Where("a.env", 3), details="x\ny"
    )
    assert (err.what, err.hint, err.where, err.details) == (
        "expected KEY=VALUE",
        "fix that line",
        Where("a.env", 3),
        "x\ny",
    )
    assert str(err) == render(err) == "a.env:3: expected KEY=VALUE (fix that line)\nx\ny"


def test_a_place_without_a_line_is_the_path_alone() -> None:
    assert str(UsageError("no such file", where=Where(Path("/tmp/f")))) == "/tmp/f: no such file"


def test_a_message_over_several_lines_keeps_its_hint_on_the_first() -> None:
    err = TritonshipError("2 problems:\n  a\n  b", hint="fix them")
    assert str(err).splitlines() == ["2 problems: (fix them)", "  a", "  b"]


def test_another_exception_reads_as_its_type_with_the_given_hint() -> None:
    assert render(ValueError("bad"), "use --debug") == "ValueError: bad (use --debug)"
    assert render(KeyError(), None) == "KeyError"


def test_an_engine_error_shows_the_server_log_below() -> None:
    err = EngineTimeout("no ping", hint="wait longer", log_tail="E0101 failed")
    assert isinstance(err, EngineError) and isinstance(err, TimeoutError)
    assert err.log_tail == "E0101 failed"
    assert str(err).splitlines() == [
        "no ping (wait longer)",
        "--- last server log lines ---",
        "E0101 failed",
    ]


def test_a_malformed_env_file_line_is_located_by_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("# comment\nA=1\nnot a pair\n", encoding="utf-8")
    with pytest.raises(TritonshipError) as caught:
        load_env_file(path)
    assert caught.value.where == Where(path, 3)
    assert str(caught.value) == (
        f"{path}:3: expected KEY=VALUE, got 'not a pair' (fix or comment out that line)"
    )
