"""The ONNX build: the same frozen Inception V3 graph converted with tf2onnx, for ONNX Runtime.

The TensorFlow backend left Triton in 25.03, so images from 25.04 on cannot serve
``tensorflow_graphdef``. ``tritonship build --format onnx`` converts the frozen graph (the
official one or the random-weight export) to ``inception_onnx/1/model.onnx`` with clean
tensor names (``input`` -> ``probabilities``), checks it against TensorFlow on the same
batch, and writes an ``onnxruntime_onnx`` model whose ``config.pbtxt`` is generated from
the source repository's TensorFlow classifier config (the same batching and instance
settings; platform, tensor names and ONNX Runtime parameters changed) with protobuf's
typed ``ModelConfig``. The ensemble's classifier step is rewired to it; every other model
(DALI, and any other step) is copied from the source repository unchanged.

The result is a separate repository (default ``model_repository_onnx``): the source keeps
its TensorFlow classifier, and no repository holds two classifiers.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.assets.models.inception_v3 import (
    IMAGE_SIZE,
    INPUT_NAME,
    NUM_CLASSES,
    ONNX_BATCH_DIM,
    ONNX_INPUT_NAME,
    ONNX_OPSET,
    ONNX_OUTPUT_NAME,
    OUTPUT_NAME,
)
from tritonship.errors import ContractError, UsageError
from tritonship.fileio import sha256_file, write_bytes_atomic, write_text_atomic
from tritonship.reporting import Reporter, quiet
from tritonship.repository import accelerators
from tritonship.repository.config import CONFIG_NAME, Model, Repository, load_repository
from tritonship.repository.manifest import (
    BuildManifest,
    Classifier,
    Conversion,
    OnnxModel,
    Parity,
    TensorNames,
    Weights,
)

ONNX_MODEL = "inception_onnx"
ONNX_FILE = "model.onnx"
PLATFORM = "onnxruntime_onnx"
TF_PLATFORM = "tensorflow_graphdef"
#: Build-time check against TensorFlow on a random batch: float32 softmax rows. Measured
#: here: 3.5e-10 absolute (3.5e-7 relative, a few float32 ulps) with random weights. The
#: bound leaves a factor of 1000 for other CPUs' kernels and the official weights' peaked
#: rows; a conversion error (a wrong layout, a dropped op) moves rows by 1e-3 or more.
PARITY_ATOL = 1e-6
#: ONNX Runtime session settings written into the generated config (``parameters``), as
#: the ONNX Runtime backend reads them (r24.10 ``src/onnxruntime.cc`` L266-301), and the
#: classifier's instance count, tuned on the 2-core CPU machine of docs/benchmarking.md
#: ("The ONNX classifier's config, tuned here"): two instances of one intra-op thread
#: each served 2.1x the throughput of one instance with ONNX Runtime's default threads
#: (0: one per physical core, with thread affinity: onnxruntime.ai "Thread management"),
#: which suffers whenever another process wants a core. On a GPU instance the classifier
#: runs on the GPU and these only size CPU thread pools; on a large CPU instance, raise
#: them.
ORT_PARAMETERS: dict[str, str] = {"intra_op_thread_count": "1"}
ORT_INSTANCES = 2

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierNames:
    """One classifier model of a repository: its folder name and tensor names."""

    name: str
    input: str
    output: str


def converter_versions() -> dict[str, str]:
    """The converter and the libraries the conversion ran with, for the manifest."""
    return {
        "converter": f"tf2onnx {metadata.version('tf2onnx')}",
        "onnx": metadata.version("onnx"),
        "tensorflow": metadata.version("tensorflow"),
    }


def convert(graph_bytes: bytes) -> bytes:
    """Convert a frozen Inception V3 GraphDef to ONNX with the clean tensor names."""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.util import deprecation

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    tf_input, tf_output = f"{INPUT_NAME}:0", f"{OUTPUT_NAME}:0"
    with deprecation.silence():  # tf2onnx calls TF1 graph utilities TF 2.20 marks deprecated
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def,
            name="inception_v3",
            input_names=[tf_input],
            output_names=[tf_output],
            opset=ONNX_OPSET,
            tensors_to_rename={tf_input: ONNX_INPUT_NAME, tf_output: ONNX_OUTPUT_NAME},
        )
    for tensor in (*model.graph.input, *model.graph.output):
        tensor.type.tensor_type.shape.dim[0].dim_param = ONNX_BATCH_DIM
    return model.SerializeToString()


def session(model: bytes | Path, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session (``threads`` 0: ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def check_contract(model_bytes: bytes) -> tuple[int | None, int, dict[str, int]]:
    """Raise ContractError unless the model has the declared tensors.

    Returns its facts: the default domain's opset, the IR version and every domain's opset.
    """
    import onnx

    try:
        model = onnx.load_from_string(model_bytes)
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises DecodeError, ValidationError, ...
        raise ContractError(f"not a valid ONNX model: {err}") from err
    expected = {
        ONNX_INPUT_NAME: [ONNX_BATCH_DIM, IMAGE_SIZE, IMAGE_SIZE, 3],
        ONNX_OUTPUT_NAME: [ONNX_BATCH_DIM, NUM_CLASSES],
    }
    found = {t.name: _dims(t) for t in (*model.graph.input, *model.graph.output)}
    if found != expected:
        raise ContractError(f"the ONNX model's tensors are {found}, expected {expected}")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    return opsets.get("ai.onnx"), model.ir_version, opsets


def _dims(tensor: Any) -> list[int | str]:
    """A value info's shape: numbers, or the symbolic name of a free dimension."""
    return [d.dim_param or d.dim_value for d in tensor.type.tensor_type.shape.dim]


def parity(graph_bytes: bytes, model_bytes: bytes, batch: np.ndarray) -> float:
    """Largest absolute difference between TensorFlow's and ONNX Runtime's softmax rows."""
    import tensorflow as tf

    from tritonship.repository.inception import run_graph

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    expected = run_graph(graph_def, batch)
    (got,) = session(model_bytes).run([ONNX_OUTPUT_NAME], {ONNX_INPUT_NAME: batch})
    return float(np.abs(got - expected).max())


def convert_checked(graph_bytes: bytes) -> tuple[bytes, Conversion]:
    """Convert, check the contract and the parity with TensorFlow; return model and record."""
    started = time.monotonic()
    model_bytes = convert(graph_bytes)
    opset, ir_version, opsets = check_contract(model_bytes)
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    difference = parity(graph_bytes, model_bytes, batch)
    if not difference <= PARITY_ATOL:
        raise ContractError(
            f"the ONNX model differs from TensorFlow by {difference:.3g} "
            f"(more than {PARITY_ATOL:g}) on the same batch"
        )
    versions = converter_versions()
    return model_bytes, Conversion(
        opset=opset,
        ir_version=ir_version,
        opsets=opsets,
        converter=versions["converter"],
        onnx=versions["onnx"],
        tensorflow=versions["tensorflow"],
        parity=Parity(max_abs_diff=difference, atol=PARITY_ATOL, batch=len(batch)),
        seconds=round(time.monotonic() - started, 1),
    )


# --- the repository: copy, classifier config, ensemble rewiring ----------------------------


def tensorflow_classifier(models: dict[str, Model]) -> Model | None:
    """The source repository's ``tensorflow_graphdef`` model (the one to convert), if any."""
    return next((m for m in models.values() if m.config.platform == TF_PLATFORM), None)


def find_base(source: Repository, repo: Path) -> mc.ModelConfig:
    """The config the ONNX classifier's is generated from.

    The source's TensorFlow classifier config; or, when the source has none (it was
    built for ONNX already), the ``inception_onnx`` config of the source or the target.
    """
    tf_model = tensorflow_classifier(source.models)
    if tf_model is not None:
        return tf_model.config
    for folder in (source.root, repo):
        path = folder / ONNX_MODEL / CONFIG_NAME
        if path.is_file():
            return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())
    raise UsageError(
        f"{source.root} has no tensorflow_graphdef classifier to convert",
        hint="build ONNX from the TensorFlow repository: --source model_repository",
    )


def copy_source(configs: Repository, repo: Path) -> None:
    """Make ``repo`` the source's copy without its TensorFlow classifier.

    Configs and committed files come from the source; ``inception_onnx/`` (a previous
    build's model.onnx) is kept; model folders the source no longer has are removed.
    """
    source = configs.root
    if source.resolve() == repo.resolve():
        raise UsageError(
            f"--repo {repo} is the source repository: an ONNX build writes a separate one",
            hint="pass --repo DIR (default model_repository_onnx) and --source SRC",
        )
    tf_model = tensorflow_classifier(configs.models)
    dropped = {tf_model.name} if tf_model else set()
    keep = {p.name for p in source.iterdir() if p.is_dir() and p.name not in dropped}
    repo.mkdir(parents=True, exist_ok=True)
    for path in repo.iterdir():
        if path.is_dir() and path.name not in keep | {ONNX_MODEL}:
            shutil.rmtree(path)  # e.g. inception_graphdef: never two classifiers
    for name in sorted(keep - {ONNX_MODEL}):
        shutil.copytree(
            source / name,
            repo / name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "model.graphdef"),
        )


def classifier_config(base: mc.ModelConfig, accelerator: str | None = None) -> mc.ModelConfig:
    """The ``inception_onnx`` config: the base's batching and instances, ONNX's names."""
    config = mc.ModelConfig()
    config.name = ONNX_MODEL
    config.platform = PLATFORM
    config.max_batch_size = base.max_batch_size
    (tensor_in,) = base.input if len(base.input) == 1 else [_default_input()]
    new_in = config.input.add()
    new_in.CopyFrom(tensor_in)
    new_in.name = ONNX_INPUT_NAME
    labelled = [o for o in base.output if o.label_filename] or list(base.output)
    new_out = config.output.add()
    new_out.CopyFrom(labelled[0] if labelled else _default_output())
    new_out.name = ONNX_OUTPUT_NAME
    config.instance_group.extend(base.instance_group)
    if base.platform != PLATFORM:  # from the TensorFlow config: this format's tuned count
        group = mc.ModelInstanceGroup()
        if base.instance_group:
            group.CopyFrom(base.instance_group[0])
        group.count = ORT_INSTANCES
        del config.instance_group[:]
        config.instance_group.append(group)
    if base.HasField("dynamic_batching"):
        config.dynamic_batching.CopyFrom(base.dynamic_batching)
    config.model_warmup.extend(_warmup(base, tensor_in.name))
    for key, value in ORT_PARAMETERS.items():
        config.parameters[key].string_value = value
    if base.platform == PLATFORM:  # regenerated from a previous ONNX config: keep its own
        for key, value in base.parameters.items():
            config.parameters[key].CopyFrom(value)
        config.optimization.CopyFrom(base.optimization)
    if accelerator:
        accelerators.add_tensorrt(config, accelerators.parse_accelerator(accelerator))
    return config


def _warmup(base: mc.ModelConfig, old_input: str) -> list[mc.ModelWarmup]:
    """The base's warmup samples, on the ONNX input name.

    With ``--accelerator tensorrt`` the warmup is what builds the TensorRT engine before
    the model turns ready (a model is not ready until its warmup has run: Triton's
    model_configuration.md, "Model Warmup"), so no live request waits for the build.
    """
    samples = []
    for sample in base.model_warmup:
        renamed = mc.ModelWarmup()
        renamed.CopyFrom(sample)
        if old_input in renamed.inputs and old_input != ONNX_INPUT_NAME:
            renamed.inputs[ONNX_INPUT_NAME].CopyFrom(renamed.inputs[old_input])
            del renamed.inputs[old_input]
        samples.append(renamed)
    return samples


def _default_input() -> mc.ModelInput:
    return mc.ModelInput(
        name=ONNX_INPUT_NAME,
        data_type=mc.TYPE_FP32,
        format=mc.ModelInput.FORMAT_NHWC,
        dims=[IMAGE_SIZE, IMAGE_SIZE, 3],
    )


def _default_output() -> mc.ModelOutput:
    return mc.ModelOutput(name=ONNX_OUTPUT_NAME, data_type=mc.TYPE_FP32, dims=[NUM_CLASSES])


def rewire(ensemble: mc.ModelConfig, old: ClassifierNames, new: ClassifierNames) -> int:
    """Point the ensemble's steps that run ``old`` at ``new``; return how many changed.

    Only those steps' ``model_name`` and the keys of their maps change: the tensors they
    read and write inside the ensemble, and every other step, stay as they are.
    """
    changed = 0
    for step in ensemble.ensemble_scheduling.step:
        if step.model_name not in (old.name, new.name):
            continue
        step.model_name = new.name
        for mapping, before, after in (
            (step.input_map, old.input, new.input),
            (step.output_map, old.output, new.output),
        ):
            if before in mapping and before != after:
                mapping[after] = mapping.pop(before)
        changed += 1
    return changed


def write_config(path: Path, config: mc.ModelConfig, header: str) -> None:
    """Write a generated config in protobuf text format, with a comment saying so."""
    write_text_atomic(path, f"# {header}\n" + text_format.MessageToString(config))


def rewire_ensembles(repo: Path, old: ClassifierNames, new: ClassifierNames) -> list[str]:
    """Rewire every ensemble of ``repo`` that ran ``old``; return their names."""
    rewired = []
    for model in load_repository(repo).models.values():
        if model.is_ensemble:
            config = mc.ModelConfig()
            config.CopyFrom(model.config)
            if rewire(config, old, new):
                header = f"Generated by tritonship build --format onnx: classifier {new.name}."
                write_config(model.config_path, config, header)
                rewired.append(model.name)
    return rewired


def tf_names(base: mc.ModelConfig) -> ClassifierNames:
    """The TensorFlow classifier's folder and tensor names (the contract's by default)."""
    labelled = [o.name for o in base.output if o.label_filename] or [OUTPUT_NAME]
    first_input = base.input[0].name if base.input else INPUT_NAME
    return ClassifierNames(base.name or "inception_graphdef", first_input, labelled[0])


ONNX_NAMES = ClassifierNames(ONNX_MODEL, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME)


def previous_model(
    repo: Path, weights: str, manifest: BuildManifest | None
) -> tuple[Weights, Conversion] | None:
    """The previous ONNX build's weights and conversion, when its model.onnx is still current.

    Current: intact (its SHA-256 as recorded), of the same weights, opset and converter.
    """
    classifier = manifest.classifier if manifest else None
    if manifest is None or classifier is None or classifier.format != "onnx":
        return None
    conversion, installed = classifier.conversion, classifier.onnx_model
    path = repo / ONNX_MODEL / "1" / ONNX_FILE
    current = (
        conversion is not None
        and installed is not None
        and manifest.weights.source == weights
        and conversion.opset == ONNX_OPSET
        and conversion.converter == converter_versions()["converter"]
        and path.is_file()
        and sha256_file(path) == installed.sha256
    )
    return (manifest.weights, conversion) if current and conversion else None


def source_graph(
    source: Repository, weights: str, source_manifest: BuildManifest | None, progress: bool
) -> tuple[bytes, Weights]:
    """The frozen graph to convert: the source's built one when it has these weights.

    Otherwise the official download or the random-weight export, as the TensorFlow build
    makes it; either way its contract is checked before conversion.
    """
    from tritonship.paths import models_cache
    from tritonship.repository import inception

    built = source_manifest.weights if source_manifest else None
    tf_model = tensorflow_classifier(source.models)
    path = tf_model.folder / "1" / "model.graphdef" if tf_model else None
    if (
        built is not None
        and built.source == weights
        and path is not None
        and path.is_file()
        and sha256_file(path) == built.graph_sha256
    ):
        return path.read_bytes(), built
    data, record = inception.graph_bytes(weights, models_cache(), progress=progress)
    inception.check_contract(data)
    return data, record


def install_model(repo: Path, model_bytes: bytes) -> Path:
    """Write ``inception_onnx/1/model.onnx`` atomically."""
    dest = repo / ONNX_MODEL / "1" / ONNX_FILE
    write_bytes_atomic(dest, model_bytes)
    return dest


def configure(
    repo: Path, source: Repository, accelerator: str | None, conversion: Conversion
) -> Classifier:
    """Write the classifier config and rewire the ensembles; the classifier record."""
    base = find_base(source, repo)
    config = classifier_config(base, accelerator)
    header = "Generated by tritonship build --format onnx from " + (
        f"{source.root.name}/{base.name}/{CONFIG_NAME}"
        if base.platform == TF_PLATFORM
        else ONNX_MODEL
    )
    write_config(repo / ONNX_MODEL / CONFIG_NAME, config, header)
    old = tf_names(base) if base.platform == TF_PLATFORM else ONNX_NAMES
    rewired = rewire_ensembles(repo, old, ONNX_NAMES)
    if not rewired:
        _log.warning("no ensemble of %s runs %s", repo, old.name)
    path = repo / ONNX_MODEL / "1" / ONNX_FILE
    installed = OnnxModel(
        sha256=sha256_file(path),
        size=path.stat().st_size,
        tensors=TensorNames(input=ONNX_INPUT_NAME, output=ONNX_OUTPUT_NAME),
        renamed_from=TensorNames(input=f"{INPUT_NAME}:0", output=f"{OUTPUT_NAME}:0"),
        accelerator=accelerators.describe(config),
        ensembles=rewired,
        source=str(source.root),
    )
    return Classifier(
        format="onnx",
        platform=PLATFORM,
        model=ONNX_MODEL,
        file=f"{ONNX_MODEL}/1/{ONNX_FILE}",
        conversion=conversion,
        onnx_model=installed,
    )


def build_classifier(
    repo: Path,
    source: Path,
    weights: str,
    accelerator: str | None = None,
    manifests: tuple[BuildManifest | None, BuildManifest | None] = (None, None),
    progress: bool = True,
    say: Reporter = quiet,
) -> tuple[Weights, Classifier]:
    """Copy the source, convert (or reuse) the classifier, configure and rewire.

    ``manifests`` are the target's previous build manifest and the source's. Returns the
    weights record and the classifier record of the build manifest. The source is parsed
    once, for the copy, the graph and the classifier config alike.
    """
    if accelerator:
        accelerators.parse_accelerator(accelerator)  # refuse before any work
    configs = load_repository(source)
    copy_source(configs, repo)
    previous, source_manifest = manifests
    reused = previous_model(repo, weights, previous)
    if reused:
        say(f"inception: reusing the {weights}-weight ONNX model already converted")
        return reused[0], configure(repo, configs, accelerator, reused[1])
    data, weights_record = source_graph(configs, weights, source_manifest, progress)
    say(f"inception: converting the {weights}-weight graph to ONNX (tf2onnx, opset {ONNX_OPSET})")
    model_bytes, conversion = convert_checked(data)
    install_model(repo, model_bytes)
    return weights_record, configure(repo, configs, accelerator, conversion)
