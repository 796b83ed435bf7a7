"""dali/pipeline.py uses only what dali/compat.json records for the 24.09 image's DALI 1.39.

The pipeline is built here on the CPU (DALI 2.x); its graph lists every operator (by its
schema name), the arguments it was given and its inputs. Anything outside the record fails
the test: a new operator, argument or arithmetic function must first be checked against
DALI 1.39 and recorded (with its source) in dali/compat.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tritonship.repository.dali import load_pipeline_module

RECORD = json.loads((ROOT / "dali" / "compat.json").read_text(encoding="utf-8"))
_FUNCTION = re.compile(r"\b([a-z_]+)\(")


@dataclass
class OpUse:
    """One operator of the built graph: schema, arguments given, inputs."""

    schema: str
    arguments: dict[str, str] = field(default_factory=dict)
    inputs: int = 0


def parse_spec(text: str) -> OpUse:
    """Read DALI's ``str(OpSpec)``: ``OpSpec for NAME:`` then Inputs/Outputs/Arguments."""
    lines = text.splitlines()
    use = OpUse(re.match(r"OpSpec for (\S+):", lines[0]).group(1))
    section = None
    for line in lines[1:]:
        if re.match(r"^  \w+:$", line):
            section = line.strip()[:-1]
        elif line.startswith("    ") and section == "Inputs":
            use.inputs += 1
        elif line.startswith("    ") and section == "Arguments":
            name, _, value = line.strip().partition(": ")
            use.arguments[name] = value
    return use


def graph(pipeline: Any) -> list[OpUse]:
    """Every operator of a built pipeline."""
    pipeline.build()
    return [parse_spec(str(op.spec)) for op in pipeline._ops]


def mixed_graph(module: Any) -> list[OpUse]:
    """Every operator of the GPU pipeline (device 0), built as a graph, never run.

    ``Pipeline._build_graph`` (DALI 2.4) traces the definition into operators without a
    CUDA device; ``build()`` would refuse ("You are trying to create a GPU DALI pipeline
    while CUDA is not available"). The server's DALI builds this graph on the GPU image.
    """
    pipeline = module.pipeline(batch_size=2, num_threads=1, device_id=0)
    pipeline._build_graph()
    return [parse_spec(str(op.spec)) for op in pipeline._ops]


def violations(uses: list[OpUse], record: dict) -> list[str]:
    """What the graph uses that the record does not allow."""
    generated = set(record["generated_arguments"]["names"])
    found = []
    for use in uses:
        allowed = record["operators"].get(use.schema)
        if allowed is None:
            found.append(f"operator {use.schema} is not recorded")
            continue
        known = generated | set(allowed["arguments"]) | set(allowed.get("generated_arguments", []))
        found += [
            f"{use.schema}: argument {name!r} is not recorded"
            for name in use.arguments
            if name not in known and not re.fullmatch(r"at_\d+", name)
        ]
        inputs = allowed["inputs"] if isinstance(allowed["inputs"], list) else [allowed["inputs"]]
        if use.inputs not in inputs:
            found.append(f"{use.schema}: {use.inputs} inputs, recorded {inputs}")
        functions = allowed.get("functions")
        if functions is not None:
            used = set(_FUNCTION.findall(use.arguments.get("expression_desc", "")))
            found += [
                f"{use.schema}: function {f!r} is not recorded" for f in used - set(functions)
            ]
    return found


@pytest.fixture(scope="module")
def shipped() -> list[OpUse]:
    module = load_pipeline_module(ROOT / "dali" / "pipeline.py")
    return graph(module.pipeline(batch_size=2, num_threads=1, device_id=None))


@pytest.fixture(scope="module")
def mixed() -> list[OpUse]:
    return mixed_graph(load_pipeline_module(ROOT / "dali" / "pipeline.py"))


def test_the_record_names_the_images_dali():
    assert RECORD["dali_version"] == "1.39.0"
    assert any("DALI_VERSION: 1.39.0" in source for source in RECORD["dali_version_source"])
    for name, entry in RECORD["operators"].items():
        assert entry["evidence"] and entry["status"], name


def test_the_pipeline_uses_only_recorded_operators_and_arguments(shipped):
    assert violations(shipped, RECORD) == []


def test_the_gpu_graph_uses_only_recorded_operators_and_arguments(mixed):
    assert violations(mixed, RECORD) == []


def test_every_recorded_operator_is_used(shipped, mixed):
    """A stale record hides what the pipeline really needs: keep it exact."""
    assert {use.schema for use in shipped} == set(RECORD["operators"])
    assert {use.schema for use in mixed} == set(RECORD["operators"])


def test_every_recorded_argument_is_used(shipped, mixed):
    """jpeg_fancy_upsampling is recorded because the GPU graph sets it, and so on."""
    used = {(u.schema, name) for u in (*shipped, *mixed) for name in u.arguments}
    for schema, entry in RECORD["operators"].items():
        for name in entry["arguments"]:
            assert (schema, name) in used, f"{schema}: {name} is recorded but never set"


def test_the_arguments_the_pipeline_sets_are_seen(shipped):
    """The parser sees the arguments (else the check above would pass vacuously)."""
    by_schema = {use.schema: use for use in shipped}
    assert by_schema["Resize"].arguments["antialias"] == "False"
    assert by_schema["Slice"].arguments["out_of_bounds_policy"] == "error"
    assert by_schema["Slice"].inputs == 3 and by_schema["ExternalSource"].inputs == 0


PIPELINE = (ROOT / "dali" / "pipeline.py").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        (("resized / 127.5 - 1.0", "fn.flip(resized) / 127.5 - 1.0"), "operator Flip"),
        (("antialias=False,", "antialias=False, mode='not_smaller',"), "argument 'mode'"),
        (("resized / 127.5 - 1.0", "resized ** 1.0 / 127.5 - 1.0"), "function 'pow'"),
        (
            ('out_of_bounds_policy="error"', 'out_of_bounds_policy="error", fill_values=0'),
            "argument 'fill_values'",
        ),
    ],
    ids=["operator", "argument", "arithmetic", "slice-argument"],
)
def test_something_unrecorded_is_reported(tmp_path: Path, change, reported):
    old, new = change
    assert old in PIPELINE
    path = tmp_path / "pipeline.py"
    path.write_text(PIPELINE.replace(old, new, 1), encoding="utf-8")
    module = load_pipeline_module(path)
    found = violations(graph(module.pipeline(batch_size=2, num_threads=1, device_id=None)), RECORD)
    assert any(reported in line for line in found), found
