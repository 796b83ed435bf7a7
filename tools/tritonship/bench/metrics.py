"""Triton's Prometheus metrics: the average batch each model executed during a level.

``nv_inference_count`` counts inferences (images, for a batching model) and
``nv_inference_exec_count`` counts executions; their increase over a level is the
average batch size the dynamic batcher (or the client's own batching) reached.
"""

from __future__ import annotations

import re

import requests

#: The models whose average batch the report gives.
MODELS = ("dali", "inception_graphdef", "inception_onnx")
_LINE = re.compile(r"^(nv_inference_(?:exec_)?count)\{([^}]*)\}\s+(\S+)$", re.MULTILINE)
_MODEL = re.compile(r'model="([^"]+)"')

Counters = dict[tuple[str, str], float]


def scrape(url: str | None, timeout: float = 5.0) -> Counters | None:
    """``{(metric, model): value}`` summed over versions; None without metrics."""
    if not url:
        return None
    try:
        return parse_counters(requests.get(url, timeout=timeout).text)
    except requests.RequestException:
        return None


def parse_counters(text: str) -> Counters:
    """The inference and execution counters of a Prometheus text page, per model."""
    counters: Counters = {}
    for metric, labels, value in _LINE.findall(text):
        model = _MODEL.search(labels)
        if model:
            key = (metric, model.group(1))
            counters[key] = counters.get(key, 0.0) + float(value)
    return counters


def average_batches(before: Counters | None, after: Counters | None) -> dict[str, float]:
    """Images per execution of each model between two scrapes ({} when unknown)."""
    if before is None or after is None:
        return {}
    batches = {}
    for model in MODELS:
        count = _delta(before, after, "nv_inference_count", model)
        executions = _delta(before, after, "nv_inference_exec_count", model)
        if executions > 0:
            batches[model] = round(count / executions, 2)
    return batches


def _delta(before: Counters, after: Counters, metric: str, model: str) -> float:
    """How much one counter grew."""
    return after.get((metric, model), 0.0) - before.get((metric, model), 0.0)
