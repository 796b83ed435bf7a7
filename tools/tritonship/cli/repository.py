"""``tritonship build`` and ``validate``: the model repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tritonship.cli.common import (
    Subparsers,
    add_command,
    add_image_tag,
    add_quiet,
    add_repo,
    add_sagemaker_env,
    env_sources,
    say,
)

if TYPE_CHECKING:
    from tritonship.repository.config import Repository
    from tritonship.repository.manifest import BuildManifest, Classifier
    from tritonship.sagemaker.settings import SageMakerEnv

SKIPPED_CUDA_CHECK = (
    "--skip-cuda-check: not checking for a CUDA device; the GPU configs are written and the "
    "mixed pipeline is built as a graph, but nothing runs on a GPU here"
)
RANDOM_WEIGHTS_NOTICE = (
    "NOTICE: random weights - the labels the model predicts are meaningless; "
    "build with --weights official for real predictions"
)


def cmd_build(args: argparse.Namespace) -> int:
    """Build every artifact of the repository (TensorFlow, or ONNX from the TensorFlow one)."""
    from tritonship.repository.build import build_repository, default_repository, resolve_format

    fmt = resolve_format(args.format, args.image_tag)
    repo = args.repo or default_repository(fmt, args.device)
    if args.format == "auto" and args.image_tag:
        say(f"format {fmt}: {'TensorFlow' if fmt == 'tf' else 'ONNX'} for image {args.image_tag}")
    if args.skip_cuda_check and args.device == "gpu":
        say(SKIPPED_CUDA_CHECK)
    manifest = build_repository(
        repo,
        weights=args.weights,
        device=args.device,
        progress=not args.quiet,
        say=say,
        fmt=fmt,
        source=args.source,
        accelerator=args.accelerator,
        instance_type=args.instance_type,
        cuda_check=not args.skip_cuda_check,
    )
    weights = manifest.weights
    print(
        f"built {repo}: {_classifier_line(manifest.classifier)}, {weights.source} weights "
        f"(sha256 {weights.graph_sha256[:12]}), "
        f"DALI {manifest.dali.build_dali_version} {manifest.dali.mode}, "
        f"target {_target_line(manifest)}, {len(manifest.files)} files, "
        f"{manifest.seconds} s"
    )
    if weights.source == "random":
        say(RANDOM_WEIGHTS_NOTICE)
    return _check_image(repo, args.image_tag) if args.image_tag else 0


def _target_line(manifest: BuildManifest) -> str:
    """``cpu``, or ``gpu (ml.g4dn.xlarge: NVIDIA T4, num_threads 4; GPU pipeline not run)``."""
    gpu = manifest.gpu
    if gpu is None:
        return manifest.device_target
    target = manifest.dali.targets.get("gpu")
    verified = target is not None and target.verified
    ran = "GPU pipeline verified" if verified else "GPU pipeline built as a graph, not run"
    return (
        f"gpu ({gpu.instance_type}: {gpu.gpu}, num_threads {gpu.num_threads}, "
        f"DALI budget {gpu.dali_memory_budget_bytes / (1 << 30):.1f} GiB; {ran})"
    )


def _classifier_line(record: Classifier | None) -> str:
    """``onnx classifier inception_onnx (opset 17, tf2onnx 1.17.0, ...)``, in a few words."""
    if record is None or record.conversion is None:
        return f"TensorFlow classifier {record.model if record else None}"
    conversion = record.conversion
    details = [f"opset {conversion.opset}", conversion.converter]
    details.append(f"max diff to TensorFlow {conversion.parity.max_abs_diff:.1e}")
    if record.accelerator:
        details.append(f"GPU accelerator {record.accelerator}")
    return f"ONNX classifier {record.model} ({', '.join(details)})"


def _check_image(repo: Path, tag: str) -> int:
    """Validate the built repository for the image it targets; 1 on findings."""
    from tritonship.repository.config import format_findings, load_repository
    from tritonship.repository.validate import validate_repository

    findings = validate_repository(load_repository(repo), image_tag=tag)
    if findings:
        print(format_findings(findings))
        return 1
    say(f"validate --image-tag {tag}: clean; next: tritonship package --repo {repo}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate the repository; exit 1 with one line per finding."""
    from tritonship.repository.config import format_findings, load_repository
    from tritonship.repository.validate import summary, validate_repository
    from tritonship.sagemaker.settings import sagemaker_env

    env = sagemaker_env(env_sources(args), args.repo)
    repository = load_repository(args.repo)
    findings = validate_repository(repository, image_tag=args.image_tag, env=env)
    _note_native_gaps(repository, env)
    if findings:
        print(format_findings(findings))
        print(f"{len(findings)} finding(s) in {args.repo}", file=sys.stderr)
        return 1
    print(summary(repository))
    return 0


def _note_native_gaps(repository: Repository, env: SageMakerEnv) -> None:
    """Say which models the native engine cannot run: a note, not a finding (SageMaker can)."""
    from tritonship.local.native import DOCKER_HINT, native_gaps

    for gap in native_gaps(repository, env):
        say(f"note: the native engine cannot serve {gap}; {DOCKER_HINT}")


def add_build(sub: Subparsers) -> None:
    """``build [--repo DIR] [--format auto|tf|onnx] [--image-tag TAG] [--weights ...] ...``."""
    from tritonship.paths import DEFAULT_REPOSITORY
    from tritonship.sagemaker.instances import DEFAULT_INSTANCE_TYPE

    build = add_command(
        sub, "build", cmd_build, "build the DALI pipeline, Inception classifier and labels"
    )
    build.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="repository to build (default: model_repository; model_repository_onnx for "
        "onnx; model_repository_gpu for --device gpu)",
    )
    build.add_argument(
        "--format",
        choices=["auto", "tf", "onnx"],
        default="auto",
        help="classifier format; auto: by --image-tag (onnx for 25.03 on, else tf) "
        "(default: %(default)s)",
    )
    add_image_tag(
        build,
        "the SageMaker Triton image tag it targets, e.g. 26.05-py3 (picks auto's format; "
        "validated; default: none, TensorFlow)",
    )
    build.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_REPOSITORY,
        help="onnx or --device gpu: the repository to copy from (default: %(default)s)",
    )
    build.add_argument(
        "--accelerator",
        metavar="tensorrt[:fp16]",
        help="onnx: ONNX Runtime's TensorRT execution accelerator (GPU instances only)",
    )
    build.add_argument(
        "--weights",
        choices=["official", "random", "auto"],
        default="official",
        help="official (download), random (offline) or auto: official where the network "
        "allows, else random (default: %(default)s)",
    )
    build.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="gpu: configs sized for --instance-type, in a separate repository "
        "(default model_repository_gpu); auto: the shared configs, verified on this machine "
        "(default: %(default)s)",
    )
    build.add_argument(
        "--instance-type",
        metavar="TYPE",
        help=f"gpu: the SageMaker instance type to size for (default: promote's, "
        f"{DEFAULT_INSTANCE_TYPE})",
    )
    build.add_argument(
        "--skip-cuda-check",
        action="store_true",
        help="gpu: build for a GPU instance on a machine without one (nothing runs on a GPU; "
        "default: check for CUDA)",
    )
    add_quiet(build)


def add_validate(sub: Subparsers) -> None:
    """``validate [--repo DIR] [--image-tag TAG]`` (``--image TAG``: the old spelling)."""
    validate = add_command(
        sub, "validate", cmd_validate, "check every config.pbtxt and the ensemble"
    )
    add_repo(validate)
    add_image_tag(
        validate,
        "also check that this SageMaker Triton image tag (e.g. 24.09-py3) has every backend "
        "(default: no image check)",
        old="--image",
    )
    add_sagemaker_env(validate)


def register(sub: Subparsers) -> None:
    """The repository commands."""
    add_build(sub)
    add_validate(sub)
