"""The 1001-line labels file."""

from __future__ import annotations

from pathlib import Path

from tritonship.fileio import sha256_file
from tritonship.repository.build import build_labels
from tritonship.repository.labels import inception_labels


def test_labels_are_background_then_imagenet_in_class_order():
    labels = inception_labels()
    assert len(labels) == 1001
    assert labels[0] == "background"
    assert labels[1] == "tench"  # n01440764, ImageNet class 0
    assert labels[2] == "goldfish"
    assert labels[282:285] == ["tabby", "tiger cat", "Persian cat"]  # classes 281-283
    assert labels[1000] == "toilet tissue"  # n15075141, ImageNet class 999
    assert all(label and "\n" not in label for label in labels)


def test_built_labels_file_has_one_line_per_output(tmp_path: Path):
    record = build_labels(tmp_path)
    path = tmp_path / "inception_graphdef/inception_labels.txt"
    lines = path.read_text().splitlines()
    assert lines == inception_labels()
    assert record.lines == len(lines) == 1001
    assert record.file == "inception_graphdef/inception_labels.txt"
    assert record.sha256 == sha256_file(path)
