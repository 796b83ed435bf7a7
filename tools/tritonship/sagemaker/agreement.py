"""Whether two answers to the same request agree: what replay and the local mirror report.

For our ensemble (an ``OUTPUT`` tensor of probability rows, ``[N, 1001]``) each row's top-1
class, the overlap of the top-5 classes and the largest absolute probability difference
are compared; for any other model every output is compared by name, exactly for integer,
boolean and text tensors, within a tolerance for floating-point ones. Answers that are not
inference responses agree when their bytes are equal.

The tolerance is numpy's ``allclose``: ``|a - b| <= atol + rtol * |b|``. The defaults
(``rtol`` 1e-5, ``atol`` 1e-8) accept the float noise of one float32 network computed by
different kernels (the ONNX build against TensorFlow: 3.5e-7 relative, measured in
tests/integration/test_onnx.py) and nothing more: a wrong preprocessing step moves the
near-uniform rows of a random-weight graph by about 1e-3 relative, and a real graph's by
far more. A build meant to differ numerically (fp16, TensorRT) needs a looser tolerance;
top-1 and top-5 are reported either way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.sagemaker.tensors import InferenceAnswer, OtherAnswer, decode_answer
from tritonship.sagemaker.wire import OUTPUT_NAME

#: The classifier's rows: a background class and the 1000 ImageNet classes.
CLASSES = 1001
TOP_K = 5
RTOL, ATOL = 1e-5, 1e-8


@dataclass(frozen=True)
class Tolerance:
    """How far floating-point values may differ and still agree (numpy ``allclose``)."""

    rtol: float = RTOL
    atol: float = ATOL

    def close(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether ``a`` and ``b`` agree within the tolerance."""
        return bool(np.allclose(a, b, rtol=self.rtol, atol=self.atol))

    def describe(self) -> str:
        """``rtol 1e-05, atol 1e-08``."""
        return f"rtol {self.rtol:g}, atol {self.atol:g}"


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Agreement:
    """The comparison of two answers to one request.

    ``kind``: ``classifier`` (our ensemble's rows), ``tensors`` (any model) or ``bytes``.
    ``detail`` says why they disagree, or sums up how close they are.
    """

    agree: bool
    kind: str
    detail: str
    max_abs_diff: float | None = None
    rows: int = 0
    top1_equal: int = 0
    top5_overlap: float | None = None
    top1: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))

    def as_json(self) -> dict[str, Any]:
        """The comparison as JSON."""
        return asdict(self)


def classifier_rows(answer: InferenceAnswer) -> np.ndarray | None:
    """The ``[N, 1001]`` probability rows of our ensemble's answer, else None."""
    for output in answer.outputs:
        array = output.array
        is_rows = array.ndim == 2 and array.shape[1] == CLASSES
        if output.name == OUTPUT_NAME and is_rows and array.dtype.kind == "f":
            return array
    return None


def _top(rows: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best classes, best first."""
    return np.argsort(rows, axis=1, kind="stable")[:, ::-1][:, :k]


def compare_rows(a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> Agreement:
    """Two classifiers' probability rows: top-1, top-5 overlap, largest difference."""
    if a.shape != b.shape:
        return Agreement(False, "classifier", f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
    top_a, top_b = _top(a, TOP_K), _top(b, TOP_K)
    first_a, first_b = top_a[:, 0].tolist(), top_b[:, 0].tolist()
    equal = sum(x == y for x, y in zip(first_a, first_b, strict=True))
    overlap = float(
        np.mean([len(set(x) & set(y)) for x, y in zip(top_a.tolist(), top_b.tolist(), strict=True)])
    )
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    rows = len(a)
    if equal < rows:
        row = next(i for i in range(rows) if first_a[i] != first_b[i])
        detail = (
            f"top-1 differs in {rows - equal} of {rows} rows "
            f"(row {row}: #{first_a[row]} vs #{first_b[row]})"
        )
    elif not tolerance.close(a, b):
        detail = f"probabilities differ beyond {tolerance.describe()} (max abs diff {diff:.3g})"
    else:
        detail = (
            f"top-1 equal in {rows} rows, top-5 overlap {overlap:.1f}/5, max abs diff {diff:.3g}"
        )
    agree = equal == rows and tolerance.close(a, b)
    return Agreement(agree, "classifier", detail, diff, rows, equal, overlap, (first_a, first_b))


def _output_difference(name: str, a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> str | None:
    """Why output ``name`` differs, or None when it agrees."""
    if a.shape != b.shape:
        return f"{name}: shape {list(a.shape)} vs {list(b.shape)}"
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        if tolerance.close(a, b):
            return None
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        return f"{name}: differs beyond {tolerance.describe()} (max abs diff {diff:.3g})"
    if a.dtype != b.dtype:
        return f"{name}: datatype {a.dtype} vs {b.dtype}"
    return None if np.array_equal(a, b) else f"{name}: values differ"


def _max_float_diff(a: InferenceAnswer, b: InferenceAnswer) -> float | None:
    """The largest difference over the floating-point outputs both answers share."""
    mine = {o.name: o.array for o in b.outputs}
    diffs = [
        float(np.max(np.abs(o.array.astype(np.float64) - mine[o.name].astype(np.float64))))
        for o in a.outputs
        if o.name in mine
        and o.array.dtype.kind == "f"
        and o.array.shape == mine[o.name].shape
        and o.array.size
    ]
    return max(diffs) if diffs else None


def compare_tensors(a: InferenceAnswer, b: InferenceAnswer, tolerance: Tolerance) -> Agreement:
    """Any model's answers: the same outputs, each equal (or close, for floats)."""
    rows_a, rows_b = classifier_rows(a), classifier_rows(b)
    if rows_a is not None and rows_b is not None:
        return compare_rows(rows_a, rows_b, tolerance)
    names_a, names_b = [o.name for o in a.outputs], [o.name for o in b.outputs]
    if sorted(names_a) != sorted(names_b):
        detail = f"outputs differ: {', '.join(names_a)} vs {', '.join(names_b)}"
        return Agreement(False, "tensors", detail)
    other = {o.name: o.array for o in b.outputs}
    problems = [
        problem
        for o in a.outputs
        if (problem := _output_difference(o.name, o.array, other[o.name], tolerance))
    ]
    diff = _max_float_diff(a, b)
    if problems:
        return Agreement(False, "tensors", "; ".join(problems), diff)
    shown = f", max abs diff {diff:.3g}" if diff is not None else ""
    return Agreement(True, "tensors", f"{len(names_a)} output(s) agree{shown}", diff)


def compare_answers(
    answer_a: tuple[bytes, str | None],
    answer_b: tuple[bytes, str | None],
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Agreement:
    """Two answers as (body, Content-Type): decoded and compared."""
    decoded = []
    for side, (body, content_type) in zip("AB", (answer_a, answer_b), strict=True):
        try:
            decoded.append(decode_answer(body, content_type))
        except TritonshipError as err:
            return Agreement(False, "bytes", f"answer {side} cannot be decoded: {err}")
    first, second = decoded
    if isinstance(first, InferenceAnswer) and isinstance(second, InferenceAnswer):
        return compare_tensors(first, second, tolerance)
    if isinstance(first, OtherAnswer) and isinstance(second, OtherAnswer):
        same = first.body == second.body
        return Agreement(same, "bytes", "same bytes" if same else "the bodies differ")
    return Agreement(False, "bytes", "one answer is an inference response, the other is not")
