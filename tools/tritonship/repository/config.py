"""A Triton model repository as typed configs, and where each field is in their text.

Every ``config.pbtxt`` is parsed with ``model_config_pb2.ModelConfig`` and protobuf text
format (:func:`load_repository`, once per command: the object goes to every check that
needs it). A problem is a :class:`Finding` that names the file and, where it makes sense,
the line of the offending field or value (:func:`locate`), so that ``path:line: message``
opens in an editor. The rules themselves are in :mod:`tritonship.repository.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.errors import UsageError, Where

CONFIG_NAME = "config.pbtxt"

#: The backend that runs each platform.
PLATFORM_BACKENDS: Mapping[str, str] = {
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "tensorrt_plan": "tensorrt",
    "ensemble": "ensemble",
}
#: Artifact names Triton looks for in a version folder, by platform or backend.
DEFAULT_ARTIFACTS: Mapping[str, tuple[str, ...]] = {
    "tensorflow_graphdef": ("model.graphdef",),
    "tensorflow_savedmodel": ("model.savedmodel",),
    "onnxruntime_onnx": ("model.onnx",),
    "onnxruntime": ("model.onnx",),
    "pytorch_libtorch": ("model.pt",),
    "pytorch": ("model.pt",),
    "tensorrt_plan": ("model.plan",),
    "tensorrt": ("model.plan",),
    "openvino": ("model.xml",),
    "python": ("model.py",),
    "dali": ("model.dali",),
    "ensemble": (),
}
#: A DALI autoserialize source the backend serializes at load time.
DALI_AUTOSERIALIZE = "dali.py"

_STRING_OR_COMMENT = re.compile(r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')|#[^\n]*")


@dataclass(frozen=True)
class Finding:
    """One problem: the file to fix, the line (when known) and what is wrong."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{Where(self.path, self.line)}: {self.message}"


@dataclass(frozen=True)
class Model:
    """One model folder with its parsed config and the text used to locate fields."""

    folder: Path
    config: mc.ModelConfig
    source: str = field(repr=False)

    @property
    def name(self) -> str:
        """The folder name, which is the name Triton serves the model under."""
        return self.folder.name

    @property
    def config_path(self) -> Path:
        """Path of the model's ``config.pbtxt``."""
        return self.folder / CONFIG_NAME

    @property
    def kind(self) -> str:
        """The platform, or the backend when no platform is set."""
        return self.config.platform or self.config.backend

    @property
    def backend(self) -> str:
        """The backend that runs the model (derived from the platform when needed)."""
        return PLATFORM_BACKENDS.get(self.config.platform, self.config.backend)

    @property
    def is_ensemble(self) -> bool:
        """Whether the model is an ensemble."""
        return self.config.platform == "ensemble"

    @property
    def inputs(self) -> dict[str, mc.ModelInput]:
        """Inputs by name (the first one wins on duplicates)."""
        return _by_name(self.config.input)

    @property
    def outputs(self) -> dict[str, mc.ModelOutput]:
        """Outputs by name (the first one wins on duplicates)."""
        return _by_name(self.config.output)

    def versions(self) -> list[int]:
        """Numeric version folders present, ascending."""
        return sorted(int(p.name) for p in self.folder.iterdir() if _is_version(p))

    def shape(self, tensor: mc.ModelInput | mc.ModelOutput) -> tuple[int, ...]:
        """Full tensor shape as requests see it: batch dimension -1 first when batching."""
        batch = (-1,) if self.config.max_batch_size > 0 else ()
        return (*batch, *tensor.dims)

    def line(self, *patterns: str) -> int | None:
        """Line of the last of ``patterns``, each searched after the previous match."""
        return locate(self.source, *patterns)

    def finding(self, message: str, *patterns: str) -> Finding:
        """A finding in this model's config at the line ``patterns`` lead to."""
        return Finding(self.config_path, self.line(*patterns), message)


@dataclass(frozen=True)
class Repository:
    """A loaded model repository: parsed models plus the problems met while loading."""

    root: Path
    folders: tuple[str, ...]
    models: dict[str, Model]
    findings: tuple[Finding, ...] = ()


def _by_name(tensors: Iterable[mc.ModelInput | mc.ModelOutput]) -> dict:
    result: dict = {}
    for tensor in tensors:
        result.setdefault(tensor.name, tensor)
    return result


def _is_version(path: Path) -> bool:
    return path.is_dir() and path.name.isdigit()


# --- locating fields in the raw text ------------------------------------------------------


def blank_comments(text: str) -> str:
    """Replace ``#`` comments with spaces, keeping strings, offsets and line numbers."""
    return _STRING_OR_COMMENT.sub(lambda m: m.group(1) or " " * len(m.group(0)), text)


def field_pattern(name: str, value: str | int | None = None) -> str:
    """Regex for a text-format field, optionally holding exactly ``value``."""
    key = rf"\b{re.escape(name)}\s*"
    if value is None:
        return key + r"[:{<\[]"
    literal = re.escape(str(value))
    return key + rf":\s*(?:\"{literal}\"|'{literal}'|{literal}(?![\w.\-/]))"


def locate(text: str, *patterns: str) -> int | None:
    """Line of the last of ``patterns`` found in order; stops at the first one missing."""
    position, line = 0, None
    for pattern in patterns:
        match = re.compile(pattern).search(text, position)
        if match is None:
            break
        position, line = match.end(), text.count("\n", 0, match.start()) + 1
    return line


def step_patterns(index: int) -> list[str]:
    """Patterns that lead to the ``index``-th step of ``ensemble_scheduling``."""
    return [field_pattern("ensemble_scheduling")] + [field_pattern("step")] * (index + 1)


def tensor_patterns(kind: str, name: str, occurrence: int = 1) -> list[str]:
    """Patterns that lead to the ``occurrence``-th ``kind`` (input, output) named ``name``."""
    return [field_pattern(kind)] + [field_pattern("name", name)] * occurrence


def _parse_message(err: text_format.ParseError) -> str:
    """The parser's own words, without the ``line:column : `` it puts in front of them.

    ``ParseError`` keeps the position as fields (``GetLine``, ``GetColumn``) and joins it
    into the message it was given: that prefix is rebuilt from the fields and removed.
    """
    line, column = err.GetLine(), err.GetColumn()
    if line is None:
        return str(err)
    position = f"{line}:{column}" if column is not None else str(line)
    return str(err).removeprefix(f"{position} : ")


# --- loading ------------------------------------------------------------------------------


def parse_config(path: Path) -> tuple[mc.ModelConfig | None, str, Finding | None]:
    """Parse one ``config.pbtxt``: (config, text with comments blanked, syntax finding)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, "", Finding(path, None, f"cannot read: {err}")
    try:
        config = text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as err:
        return None, text, Finding(path, err.GetLine(), f"syntax error: {_parse_message(err)}")
    return config, blank_comments(text), None


def model_folders(repo: Path) -> tuple[str, ...]:
    """Names of the repository's model folders (non-hidden directories), sorted."""
    return tuple(sorted(p.name for p in repo.iterdir() if p.is_dir() and p.name[0] != "."))


def load_repository(repo: Path) -> Repository:
    """Parse every model folder's ``config.pbtxt``; unreadable ones become findings."""
    if not repo.is_dir():
        raise UsageError(f"{repo}: no such model repository", "pass --repo DIR")
    folders = model_folders(repo)
    models: dict[str, Model] = {}
    findings: list[Finding] = []
    for name in folders:
        path = repo / name / CONFIG_NAME
        if not path.is_file():
            findings.append(Finding(path, None, f"model folder {name!r} has no {CONFIG_NAME}"))
            continue
        config, source, problem = parse_config(path)
        if problem:
            findings.append(problem)
        if config is not None:
            models[name] = Model(repo / name, config, source)
    return Repository(repo, folders, models, tuple(findings))


def classifier(repository: Repository) -> Model | None:
    """The repository's classifier: the model whose output carries a label file."""
    return next(
        (m for m in repository.models.values() if any(o.label_filename for o in m.config.output)),
        None,
    )


def type_name(data_type: int) -> str:
    """``TYPE_FP32``-style name of a data type."""
    return mc.DataType.Name(data_type)


def compatible(left: Sequence[int], right: Sequence[int]) -> bool:
    """Same rank and every dimension equal, -1 matching anything."""
    return len(left) == len(right) and all(
        a == b or -1 in (a, b) for a, b in zip(left, right, strict=True)
    )


def format_findings(findings: Iterable[Finding]) -> str:
    """One ``path:line: message`` line per finding."""
    return "\n".join(str(finding) for finding in findings)
