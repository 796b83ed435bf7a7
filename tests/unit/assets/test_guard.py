"""The repository's guard step: header checks with the standard library, one request at a time.

The model (model_repository/guard/1/model.py) runs here with a fake
``triton_python_backend_utils``; the server-level proof is in
tests/integration/test_isolation.py.
"""

from __future__ import annotations

import ast
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.support import fake_pb_utils as pb
from tritonship.bench.hostile import jpeg_bomb
from tritonship.samples import PHOTOS, encode, photo_array, photo_jpeg

GUARD = ROOT / "model_repository" / "guard"
LIMIT = 40_000_000


@pytest.fixture()
def guard(monkeypatch: pytest.MonkeyPatch):
    return pb.load_model(GUARD / "1" / "model.py", monkeypatch)


@pytest.fixture()
def model(guard):
    instance = guard.TritonPythonModel()
    config = (GUARD / "config.pbtxt").read_text()
    assert 'string_value: "40000000"' in config
    parameters = {"max_pixels": {"string_value": "40000000"}}
    instance.initialize({"model_config": json.dumps({"parameters": parameters})})
    return instance


def array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


def pillow(fmt: str, size: tuple[int, int] = (37, 23), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 20, 30) if mode == "RGB" else 0).save(buffer, format=fmt)
    return buffer.getvalue()


def test_the_guard_imports_only_numpy_and_the_standard_library():
    """The Triton image's Python backend has numpy, not Pillow."""
    tree = ast.parse((GUARD / "1" / "model.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "json", "re", "struct", "collections", "numpy"} | {
        "triton_python_backend_utils"
    }


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {}),
        ("PNG", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {}),
        ("PPM", {}),
    ],
)
def test_declared_size_of_every_decodable_format(guard, fmt, options):
    buffer = io.BytesIO()
    Image.new("RGB", (37, 23), (1, 2, 3)).save(buffer, format=fmt, **options)
    kind, width, height = guard.declared_size(buffer.getvalue())
    assert (width, height) == (37, 23), kind


def test_declared_size_of_other_header_variants(guard):
    import struct

    entries = struct.pack(">HHIHH", 256, 3, 1, 37, 0) + struct.pack(">HHII", 257, 4, 1, 23)
    big_endian_tiff = b"MM\x00*" + struct.pack(">IH", 8, 2) + entries + bytes(4)
    assert guard.declared_size(big_endian_tiff) == ("TIFF", 37, 23)
    assert guard.declared_size(b"P6\n# a comment\n640 480\n255\n" + bytes(9))[1:] == (640, 480)
    top_down_bmp = bytearray(pillow("BMP"))
    top_down_bmp[22:26] = (-23).to_bytes(4, "little", signed=True)
    assert guard.declared_size(bytes(top_down_bmp))[1:] == (37, 23)
    grey_tiff = pillow("TIFF", mode="L")
    assert guard.declared_size(grey_tiff)[1:] == (37, 23)


@pytest.mark.parametrize("name", PHOTOS)
def test_every_sample_photo_passes(guard, name):
    assert guard.image_problem(array(photo_jpeg(name)), LIMIT) is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "is empty (no bytes)"),
        (bytes(64), "is empty (no bytes)"),
        (b"GIF89a" + bytes(20), "cannot be read: not a JPEG, PNG, BMP, WebP, TIFF or PNM image"),
        (b'{"inputs": []}', "cannot be read: not a JPEG"),
        (photo_jpeg("chelsea")[:40], "cannot be read: the JPEG header is cut short"),
        (b"\xff\xd8\xff\xda" + bytes(64), "cannot be read: the JPEG has no frame header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "cannot be read: the PNG has no IHDR chunk"),
        (pillow("PNG")[:20], "cannot be read: the PNG header is cut short"),
    ],
)
def test_refusals(guard, data, words):
    problem = guard.image_problem(array(data), LIMIT)
    assert problem is not None and words in problem


def test_random_bytes_are_refused_before_the_decoder(guard):
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)
    assert "not a JPEG" in guard.image_problem(noise, LIMIT)


def test_a_bomb_is_refused_from_its_header(guard):
    assert guard.image_problem(array(jpeg_bomb()), LIMIT) == (
        "declares 65500x65500 pixels, more than the limit of 40 megapixels (a decompression bomb?)"
    )


def test_a_png_bomb_and_a_zero_sized_image(guard):
    png = bytearray(pillow("PNG"))
    png[16:24] = (50_000).to_bytes(4, "big") + (50_000).to_bytes(4, "big")
    assert "declares 50000x50000 pixels" in guard.image_problem(array(bytes(png)), LIMIT)
    png[16:24] = bytes(8)
    assert "declares a 0x0 PNG image (no pixels)" in guard.image_problem(array(bytes(png)), LIMIT)


def test_the_pixel_limit_is_inclusive(guard):
    photo = photo_jpeg("chelsea")
    _, width, height = guard.declared_size(photo)
    assert guard.image_problem(array(photo), width * height) is None
    assert "declares" in guard.image_problem(array(photo), width * height - 1)


def test_a_padded_request_names_the_refused_image(guard):
    photo, png = photo_jpeg("chelsea"), encode(photo_array("coffee"), "PNG")
    batch = np.zeros((3, max(len(photo), len(png))), np.uint8)
    batch[0, : len(photo)] = array(photo)
    batch[2, : len(png)] = array(png)
    assert guard.request_problem(batch, LIMIT) == "guard: image 2 of 3 is empty (no bytes)"
    assert guard.request_problem(batch[[0, 2]], LIMIT) is None
    assert guard.request_problem(array(photo), LIMIT) is None  # 1-D: one image


def test_execute_answers_each_request_on_its_own(model):
    photo = array(photo_jpeg("chelsea"))[np.newaxis]
    bomb = array(jpeg_bomb())[np.newaxis]
    good, bad, broken = model.execute(
        [
            pb.InferenceRequest(IMAGE=photo),
            pb.InferenceRequest(IMAGE=bomb),
            pb.InferenceRequest(OTHER=photo),  # no IMAGE: cannot be checked
        ]
    )
    assert not good.has_error()
    np.testing.assert_array_equal(good.output("CHECKED_IMAGE"), photo)
    assert bad.error.code() == pb.TritonError.INVALID_ARG
    assert bad.error.message().startswith("guard: image 1 of 1 declares 65500x65500 pixels")
    assert broken.has_error() and "cannot be checked" in broken.error.message()


def test_the_limit_comes_from_the_config(guard):
    instance = guard.TritonPythonModel()
    parameters = {"max_pixels": {"string_value": "100"}}
    instance.initialize({"model_config": json.dumps({"parameters": parameters})})
    [answer] = instance.execute([pb.InferenceRequest(IMAGE=array(pillow("PNG"))[np.newaxis])])
    assert "more than the limit of 0.0001 megapixels" in answer.error.message()
    instance.initialize({"model_config": json.dumps({})})
    assert instance.max_pixels == guard.DEFAULT_MAX_PIXELS


def test_a_request_over_the_per_request_pixel_limit_is_refused(guard):
    """A GPU build's budget: all images of a request decode at once on the GPU."""
    cat, coffee = photo_jpeg("chelsea"), encode(photo_array("coffee"), "PNG")  # 451x300, 600x400
    batch = np.zeros((2, max(len(cat), len(coffee))), np.uint8)
    batch[0, : len(cat)], batch[1, : len(coffee)] = array(cat), array(coffee)
    total = 451 * 300 + 600 * 400
    assert guard.request_problem(batch, LIMIT, total) is None, "inclusive"
    assert guard.request_problem(batch[:1], LIMIT, 451 * 300) is None
    assert guard.request_problem(batch, LIMIT, total - 1) == (
        "guard: the 2 images declare 0.3753 megapixels in all, more than the limit of "
        "0.375299 megapixels per request (the decoder's memory budget): send fewer or "
        "smaller images per request"
    )
    assert guard.request_problem(batch, LIMIT) is None, "no per-request limit by default"


def test_the_per_request_limit_comes_from_the_config(guard):
    instance = guard.TritonPythonModel()
    parameters = {"max_pixels": {"string_value": "40000000"}}
    instance.initialize({"model_config": json.dumps({"parameters": parameters})})
    assert instance.max_request_pixels is None
    parameters["max_request_pixels"] = {"string_value": "100000"}
    instance.initialize({"model_config": json.dumps({"parameters": parameters})})
    [answer] = instance.execute([pb.InferenceRequest(IMAGE=array(photo_jpeg("chelsea"))[None])])
    assert answer.error.code() == pb.TritonError.INVALID_ARG
    assert "more than the limit of 0.1 megapixels per request" in answer.error.message()
