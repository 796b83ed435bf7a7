"""Install the DALI pipeline into the repository and prove it runs with this machine's DALI."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from tritonship.errors import TritonshipError, Where
from tritonship.fileio import sha256_file
from tritonship.repository.manifest import DaliBuild, DaliTarget

#: How Triton's DALI backend finds the pipeline: it serializes ``dali.py`` at load time.
AUTOSERIALIZE_FILE = "dali.py"


def load_pipeline_module(path: Path) -> ModuleType:
    """Import a DALI pipeline definition file as a module."""
    spec = importlib.util.spec_from_file_location(f"dali_pipeline_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise TritonshipError("cannot be imported as a DALI pipeline definition", where=Where(path))
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in repos
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def cuda_device_count() -> int:
    """How many CUDA devices DALI can see (0 on a CPU-only machine)."""
    import nvidia.dali.backend as backend

    try:
        return int(backend.GetCUDADeviceCount())  # type: ignore[attr-defined] # no stubs
    except RuntimeError:
        return 0


def resolve_device(device: str, cuda_check: bool = True) -> str:
    """Turn ``auto`` into ``gpu`` or ``cpu``; refuse ``gpu`` where there is no GPU.

    ``cuda_check=False`` accepts ``gpu`` without a GPU: the build then writes the GPU
    configs and builds the mixed pipeline as a graph, without running it.
    """
    count = cuda_device_count()
    if device == "auto":
        return "gpu" if count else "cpu"
    if device == "gpu" and not count and cuda_check:
        raise TritonshipError(
            "--device gpu: DALI sees no CUDA device on this machine",
            hint="add --skip-cuda-check to build for a GPU instance from here (the GPU "
            "pipeline is then built as a graph, not run), or use --device cpu",
        )
    return device


def sample_jpeg(height: int = 480, width: int = 640) -> np.ndarray:
    """A synthetic colour-gradient JPEG, encoded with TensorFlow (no files, no network)."""
    import tensorflow as tf

    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1)
    encoded = tf.io.encode_jpeg(rgb.astype(np.uint8), quality=90).numpy()
    return np.frombuffer(encoded, dtype=np.uint8)


def run_pipeline(module: ModuleType, images: list[np.ndarray], device_id: int | None) -> list:
    """Run the module's ``pipeline`` on encoded images; return one HWC array per image."""
    pipe = module.pipeline(batch_size=len(images), num_threads=1, device_id=device_id)
    pipe.build()
    pipe.feed_input(module.INPUT_NAME, images)
    (out,) = pipe.run()
    if hasattr(out, "as_cpu"):
        out = out.as_cpu()
    return [np.array(out[i]) for i in range(len(images))]


def verify_target(module: ModuleType, device_id: int | None, decoder: str) -> DaliTarget:
    """Build the pipeline for one target, run it on a sample, and check the contract."""
    (image,) = run_pipeline(module, [sample_jpeg()], device_id)
    size = module.IMAGE_SIZE
    if image.shape != (size, size, 3) or image.dtype != np.float32:
        raise TritonshipError(f"DALI pipeline gave {image.shape} {image.dtype}, not HWC float32")
    if image.min() < -1.0001 or image.max() > 1.0001:
        raise TritonshipError(f"DALI pipeline output spans [{image.min()}, {image.max()}]")
    return DaliTarget(decoder=decoder, verified=True, output_shape=list(image.shape))


def gpu_graph(module: ModuleType) -> DaliTarget:
    """Build the GPU (device 0) pipeline as a graph, without a GPU; describe its operators.

    DALI builds the operator graph of a GPU pipeline on a CPU-only machine
    (``Pipeline._build_graph``); ``build()`` and ``run()`` would need CUDA. This proves the
    definition traces on "mixed" and records where each operator runs.
    """
    pipe = module.pipeline(batch_size=1, num_threads=1, device_id=0)
    pipe._build_graph()
    operators = []
    for op in pipe._ops:
        spec = str(op.spec).splitlines()
        schema = spec[0].removeprefix("OpSpec for ").rstrip(":")
        device = next(
            (line.split(": ", 1)[1] for line in spec if line.strip().startswith("device:")), "?"
        )
        operators.append(f"{schema} ({device})")
    return DaliTarget(decoder="mixed", verified=False, graph_built=True, operators=operators)


def autoserialize_size(module: ModuleType) -> int:
    """Serialize the pipeline as Triton's DALI backend does at load time; return its size."""
    return len(module.pipeline().serialize())


def build_dali(source: Path, version_dir: Path, device: str) -> DaliBuild:
    """Copy the pipeline definition to ``version_dir/dali.py`` and verify each target."""
    import nvidia.dali as dali

    version_dir.mkdir(parents=True, exist_ok=True)
    dest = version_dir / AUTOSERIALIZE_FILE
    shutil.copyfile(source, dest)
    (version_dir / "model.dali").unlink(missing_ok=True)  # would shadow dali.py
    module = load_pipeline_module(dest)
    cpu = verify_target(module, None, "cpu")
    gpu = DaliTarget(decoder="mixed", verified=False)
    if device == "gpu" and cuda_device_count():
        gpu = verify_target(module, 0, "mixed")
    elif device == "gpu":  # --skip-cuda-check: the graph only
        gpu = gpu_graph(module)
    return DaliBuild(
        mode="autoserialize",
        file=f"{version_dir.parent.name}/{version_dir.name}/{AUTOSERIALIZE_FILE}",
        sha256=sha256_file(dest),
        build_dali_version=dali.__version__,
        autoserialized_bytes=autoserialize_size(module),
        note="the server serializes dali.py with its own DALI at load time",
        targets={"cpu": cpu, "gpu": gpu},
    )
