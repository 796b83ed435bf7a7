"""Rules of an ensemble: its steps, and the tensors that flow between them.

Each tensor has one producer (an ensemble input or a step's ``output_map``) and its
consumers (steps' ``input_map``, ensemble outputs); their types and full shapes must agree,
every model named must exist and take what it is given, and the steps form no cycle (core
r24.09 ``src/ensemble_scheduler/ensemble_utils.cc``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.repository.config import (
    Finding,
    Model,
    Repository,
    compatible,
    field_pattern,
    step_patterns,
    tensor_patterns,
    type_name,
)


@dataclass(frozen=True)
class _Port:
    """One end of an ensemble tensor: who writes or reads it, with which type and shape."""

    label: str
    data_type: int | None
    shape: tuple[int, ...] | None
    line: int | None
    step: int | None = None


@dataclass
class _Flow:
    """The tensors of an ensemble: who produces and who consumes each one."""

    producers: dict[str, list[_Port]] = field(default_factory=dict)
    consumers: dict[str, list[_Port]] = field(default_factory=dict)

    def produce(self, tensor: str, port: _Port) -> None:
        self.producers.setdefault(tensor, []).append(port)

    def consume(self, tensor: str, port: _Port) -> None:
        self.consumers.setdefault(tensor, []).append(port)

    def edges(self) -> dict[int, set[int]]:
        """Step-to-step dependencies: producing step -> consuming steps."""
        graph: dict[int, set[int]] = {}
        for tensor, readers in self.consumers.items():
            for writer in self.producers.get(tensor, []):
                targets = {r.step for r in readers if r.step is not None}
                if writer.step is not None and targets:
                    graph.setdefault(writer.step, set()).update(targets)
        return graph


def _step_label(index: int, step: mc.ModelEnsembling.Step) -> str:
    return f"step {index + 1} ({step.model_name})"


def _port(
    owner: Model | None,
    tensor: mc.ModelInput | mc.ModelOutput | None,
    label: str,
    line: int | None,
    step: int | None = None,
) -> _Port:
    """A port typed from ``tensor`` of ``owner``; untyped when either is unknown."""
    if owner is None or tensor is None:
        return _Port(label, None, None, line, step)
    return _Port(label, tensor.data_type, owner.shape(tensor), line, step)


def _ensemble_ports(ensemble: Model, flow: _Flow) -> None:
    for tensor in ensemble.config.input:
        line = ensemble.line(*tensor_patterns("input", tensor.name))
        flow.produce(tensor.name, _port(ensemble, tensor, f"ensemble input {tensor.name!r}", line))
    for tensor in ensemble.config.output:
        line = ensemble.line(*tensor_patterns("output", tensor.name))
        flow.consume(tensor.name, _port(ensemble, tensor, f"ensemble output {tensor.name!r}", line))


def _step_ports(ensemble: Model, index: int, step, target: Model | None, flow: _Flow) -> None:
    inputs = target.inputs if target else {}
    outputs = target.outputs if target else {}
    for kind, mapping, specs, add in (
        ("input", step.input_map, inputs, flow.consume),
        ("output", step.output_map, outputs, flow.produce),
    ):
        for key, tensor in mapping.items():
            line = ensemble.line(
                *step_patterns(index),
                field_pattern(f"{kind}_map"),
                field_pattern("key", key),
                field_pattern("value", tensor),
            )
            label = f"{_step_label(index, step)} {kind} {key!r}"
            add(tensor, _port(target, specs.get(key), label, line, index))


def _check_steps(ensemble: Model, repository: Repository) -> Iterator[Finding]:
    for index, step in enumerate(ensemble.config.ensemble_scheduling.step):
        target = repository.models.get(step.model_name)
        if target is not None:
            yield from _check_step_target(ensemble, index, step, target)
        elif step.model_name not in repository.folders:
            yield ensemble.finding(
                f"{_step_label(index, step)}: model_name {step.model_name!r} is not a model "
                f"of the repository (models: {', '.join(repository.folders)})",
                *step_patterns(index),
                field_pattern("model_name", step.model_name),
            )


def _check_step_target(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    yield from _check_step_version(ensemble, index, step, target)
    yield from _check_step_batch(ensemble, index, step, target)
    yield from _check_map(ensemble, index, step, "input", target.inputs)
    yield from _check_map(ensemble, index, step, "output", target.outputs)
    yield from _check_unmapped(ensemble, index, step, target)


def _check_step_version(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    version = step.model_version
    if version != -1 and version not in target.versions():
        yield ensemble.finding(
            f"{_step_label(index, step)}: model_version {version} has no folder "
            f"{target.name}/{version}/ (use -1 for the latest)",
            *step_patterns(index),
            field_pattern("model_version"),
        )


def _check_step_batch(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    mine, theirs = ensemble.config.max_batch_size, target.config.max_batch_size
    if mine > max(theirs, 0):
        yield ensemble.finding(
            f"max_batch_size {mine} is larger than {_step_label(index, step)}'s "
            f"max_batch_size {theirs}",
            field_pattern("max_batch_size"),
        )


def _check_map(ensemble: Model, index: int, step, kind: str, specs: Mapping) -> Iterator[Finding]:
    mapping = step.input_map if kind == "input" else step.output_map
    for key in mapping:
        if key not in specs:
            yield ensemble.finding(
                f"{_step_label(index, step)}: {kind}_map key {key!r} is not an {kind} of "
                f"model {step.model_name!r} ({kind}s: {', '.join(specs) or 'none'})",
                *step_patterns(index),
                field_pattern(f"{kind}_map"),
                field_pattern("key", key),
            )


def _check_unmapped(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    for name, tensor in target.inputs.items():
        if name not in step.input_map and not tensor.optional:
            yield ensemble.finding(
                f"{_step_label(index, step)}: input {name!r} of model {target.name!r} "
                "is not mapped in input_map",
                *step_patterns(index),
                field_pattern("model_name", step.model_name),
            )


def _check_edge(ensemble: Model, tensor: str, writer: _Port, reader: _Port) -> Iterator[Finding]:
    where = f"tensor {tensor!r} from {writer.label} to {reader.label}"
    written, read = writer.data_type, reader.data_type
    if written is not None and read is not None and written != read:
        yield Finding(
            ensemble.config_path,
            reader.line,
            f"data_type mismatch on {where}: {type_name(written)} != {type_name(read)}",
        )
    given, taken = writer.shape, reader.shape
    if given is not None and taken is not None and not compatible(given, taken):
        yield Finding(
            ensemble.config_path,
            reader.line,
            f"dims mismatch on {where}: {list(given)} vs {list(taken)} "
            "(full shapes, -1 = any; batch dimension first when max_batch_size > 0)",
        )


def _check_tensors(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    for tensor, readers in flow.consumers.items():
        writers = flow.producers.get(tensor, [])
        for reader in readers:
            if not writers:
                yield Finding(
                    ensemble.config_path,
                    reader.line,
                    f"tensor {tensor!r} read by {reader.label} is never produced "
                    "(neither an ensemble input nor in any step's output_map)",
                )
            else:
                yield from _check_edge(ensemble, tensor, writers[0], reader)


def _check_producers(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    for tensor, writers in flow.producers.items():
        if len(writers) > 1:
            yield Finding(
                ensemble.config_path,
                writers[1].line,
                f"tensor {tensor!r} is produced more than once "
                f"({', '.join(w.label for w in writers)})",
            )


def find_cycle(edges: Mapping[int, set[int]]) -> list[int] | None:
    """One cycle of the graph as a node path ending where it starts, or None."""
    done: set[int] = set()

    def visit(path: list[int]) -> list[int] | None:
        for node in sorted(edges.get(path[-1], ())):
            if node in path:
                return path[path.index(node) :] + [node]
            found = None if node in done else visit([*path, node])
            if found:
                return found
        done.add(path[-1])
        return None

    return next((c for start in sorted(edges) if (c := visit([start]))), None)


def _check_cycle(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    cycle = find_cycle(flow.edges())
    if cycle:
        steps = ensemble.config.ensemble_scheduling.step
        names = " -> ".join(_step_label(i, steps[i]) for i in cycle)
        yield ensemble.finding(
            f"steps form a cycle: {names}",
            *step_patterns(cycle[0]),
            field_pattern("model_name"),
        )


def check_ensemble(ensemble: Model, repository: Repository) -> list[Finding]:
    """Findings about an ensemble's steps and the tensors flowing between them."""
    steps = ensemble.config.ensemble_scheduling.step
    if not steps:
        return [ensemble.finding("ensemble_scheduling has no step", field_pattern("platform"))]
    flow = _Flow()
    _ensemble_ports(ensemble, flow)
    for index, step in enumerate(steps):
        _step_ports(ensemble, index, step, repository.models.get(step.model_name), flow)
    return [
        *_check_steps(ensemble, repository),
        *_check_tensors(ensemble, flow),
        *_check_producers(ensemble, flow),
        *_check_cycle(ensemble, flow),
    ]
