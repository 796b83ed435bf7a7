"""What every command group shares: progress lines, shared options, options objects."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tritonship.errors import UsageError
from tritonship.paths import DEFAULT_REPOSITORY
from tritonship.sagemaker.settings import EnvSources

Command = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # noqa: SLF001 - argparse has no public name for it
T = TypeVar("T")
LOCAL_URL = "http://127.0.0.1:8080"


def say(message: str) -> None:
    """Progress lines go to stderr so stdout stays machine-readable."""
    print(f"tritonship: {message}", file=sys.stderr, flush=True)


def _shared_options() -> argparse.ArgumentParser:
    """Options every command accepts after its name too (``tritonship serve --debug``)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    return shared


def add_command(sub: Subparsers, name: str, func: Command, summary: str) -> argparse.ArgumentParser:
    """A subcommand that runs ``func`` and accepts the shared options."""
    parser = sub.add_parser(name, help=summary, parents=[_shared_options()])
    parser.set_defaults(func=func)
    return parser


def add_repo(parser: argparse.ArgumentParser) -> None:
    """``--repo DIR``: the model repository."""
    parser.add_argument(
        "--repo",
        type=Path,
        default=DEFAULT_REPOSITORY,
        help="model repository (default: %(default)s)",
    )


def add_sagemaker_env(parser: argparse.ArgumentParser, multi_model: bool = True) -> None:
    """``--env KEY=VALUE``, ``--env-file FILE`` and ``--multi-model``: the container's variables.

    Precedence, lowest first: the packaged defaults, exported ``SAGEMAKER_*`` variables,
    ``--env-file``, ``--env`` (docs/your-repository.md).
    """
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a variable of the container (repeatable; overrides --env-file and the shell)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="KEY=VALUE lines (Docker's env-file format) over exported SAGEMAKER_* variables",
    )
    if multi_model:
        parser.add_argument(
            "--multi-model",
            action="store_true",
            help="a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true)",
        )


def env_sources(args: argparse.Namespace) -> EnvSources:
    """The :class:`EnvSources` the parsed ``--env``/``--env-file``/``--multi-model`` name."""
    return EnvSources(
        tuple(getattr(args, "env", None) or ()),
        getattr(args, "env_file", None),
        bool(getattr(args, "multi_model", False)),
    )


class DeprecatedSpelling(argparse.Action):
    """An old spelling of an option, accepted for one release with a note on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        """``new`` is the spelling to use instead (shown in the note)."""
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        """Store the value under the new option's name and say what to write instead."""
        say(
            f"note: {option_string} is deprecated here, use {self.new} (the old spelling "
            "is accepted for one more release)"
        )
        setattr(namespace, self.dest, values)


def add_deprecated(
    parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any
) -> None:
    """Accept ``old`` as a hidden spelling of ``new`` (same ``dest``), with a note.

    ``kwargs`` (e.g. ``type=Path``) must match the new option's, so both give one value.
    """
    parser.add_argument(
        old, dest=dest, action=DeprecatedSpelling, new=new, help=argparse.SUPPRESS, **kwargs
    )


def add_image_tag(parser: argparse.ArgumentParser, text: str, old: str | None = None) -> None:
    """``--image-tag TAG``: a SageMaker Triton image tag (e.g. 24.09-py3), the one name for it.

    ``old``: a former spelling of the same option, still accepted for one release.
    """
    parser.add_argument("--image-tag", metavar="TAG", default=None, help=text)
    if old:
        add_deprecated(parser, old, "--image-tag", "image_tag")


def add_quiet(parser: argparse.ArgumentParser, text: str = "no progress bars") -> None:
    """``--quiet``: no progress display."""
    parser.add_argument("--quiet", action="store_true", help=text)


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output on stdout."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_target(parser: argparse.ArgumentParser, endpoint_help: str) -> None:
    """``--url URL | --endpoint NAME``: the container API or a SageMaker endpoint."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help=f"container API base URL (default {LOCAL_URL})")
    where.add_argument("--endpoint", metavar="NAME", help=endpoint_help)


#: Why a multi-model endpoint's target model is reached through InvokeEndpoint only.
TARGET_MODEL_HINT = (
    "a multi-model endpoint's models are reached through InvokeEndpoint: --endpoint NAME "
    "(AWS, or the local runtime of serve --multi-model with "
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081); the container's own "
    "/models/NAME/invoke is the runtime's to drive"
)


def add_target_model(parser: argparse.ArgumentParser) -> None:
    """``--target-model ARCHIVE``: InvokeEndpoint's ``TargetModel`` (multi-model endpoints)."""
    parser.add_argument(
        "--target-model",
        metavar="ARCHIVE",
        help="with --endpoint: the multi-model endpoint's model to use, an archive under its "
        "S3 prefix (e.g. model_tf_dali.tar.gz)",
    )


def require_endpoint(args: argparse.Namespace) -> None:
    """Refuse ``--target-model`` and ``--target-variant`` without ``--endpoint``."""
    if getattr(args, "endpoint", None):
        return
    if getattr(args, "target_model", None):
        raise UsageError("--target-model needs --endpoint", hint=TARGET_MODEL_HINT)
    if getattr(args, "target_variant", None):
        raise UsageError("--target-variant needs --endpoint", hint="add --endpoint NAME")


def from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """An options dataclass from the parsed arguments of the same names (and ``overrides``)."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return cls(**{**values, **overrides})
