"""Help texts that agree with the docs: a default in every help line, one name per concept."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS

import pytest

from tritonship import cli


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def visible_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS
    ]


def _has_default(action: argparse.Action) -> bool:
    return bool(action.option_strings) and action.default not in (None, False, [], (), SUPPRESS)


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_help_that_names_its_default(command: str):
    missing, silent = [], []
    for action in visible_options(subcommands()[command]):
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            missing.append(name)
        elif _has_default(action) and "default" not in action.help:
            silent.append(f"{name} (default {action.default!r})")
    assert not missing, f"{command}: options without help: {missing}"
    assert not silent, f"{command}: help lines without their default: {silent}"


def test_an_image_tag_has_one_name_everywhere():
    """A tag is --image-tag TAG; serve's --image is a URI, said so in its help."""
    for command, parser in subcommands().items():
        for action in visible_options(parser):
            if action.metavar == "TAG":
                assert action.option_strings == ["--image-tag"], command
            if "--image" in action.option_strings:
                assert command == "serve" and action.metavar == "URI"
                assert "not a tag" in action.help
    for command in ("build", "validate", "package", "promote"):
        options = {o for a in visible_options(subcommands()[command]) for o in a.option_strings}
        assert "--image-tag" in options, command


def test_validate_still_accepts_the_old_spelling_with_a_note(capsys):
    args = cli.build_parser().parse_args(["validate", "--image", "24.09-py3"])
    assert args.image_tag == "24.09-py3"
    err = capsys.readouterr().err
    assert "--image is deprecated" in err and "--image-tag" in err
    args = cli.build_parser().parse_args(["validate", "--image-tag", "24.09-py3"])
    assert args.image_tag == "24.09-py3" and capsys.readouterr().err == ""


def test_bench_photo_has_its_own_name_and_the_old_one_still_works(capsys):
    assert cli.build_parser().parse_args(["bench", "--photo", "a.jpg"]).photo.name == "a.jpg"
    args = cli.build_parser().parse_args(["bench", "--image", "b.jpg"])
    assert args.photo.name == "b.jpg"
    assert "use --photo" in capsys.readouterr().err


def test_bench_help_names_the_runtime_variable_the_docs_use():
    text = subcommands()["bench"].format_help()
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" in " ".join(text.split())
    assert "AWS_ENDPOINT_URL=" not in text


def test_teardown_documents_its_prefix():
    text = " ".join(subcommands()["teardown"].format_help().split())
    assert "--prefix PREFIX" in text and "the S3 key prefix promote used" in text


def test_bench_keeps_its_stamped_copy_out_of_the_checkout_unless_asked():
    from pathlib import Path

    from tritonship.cli.bench import _results_dir

    parse = cli.build_parser().parse_args
    out = Path("/tmp/run/bench")
    assert _results_dir(parse(["bench"]), out) == out
    assert _results_dir(parse(["bench", "--results", "docs/results"]), out) == Path("docs/results")
    assert _results_dir(parse(["bench", "--no-results"]), out) is None
