"""Device check: JPEG decoding on the GPU (nvJPEG) against libjpeg, after our preprocessing.

NOT RUN YET. It was written in a session that had no GPU; nothing in docs/gpu.md rests on
its output. Run it on a machine with an NVIDIA GPU, CUDA, PyTorch and torchvision (what
a device check gets), in at most three minutes:

    python tools/gpu_check/decode_parity.py [EXTRA.jpg ...] [--out results.json]

What it measures. ``dali/pipeline.py`` decodes on "mixed" (nvJPEG) on a GPU server and on
the CPU (libjpeg-turbo) everywhere else; our preprocessing parity (6e-5 against
TensorFlow, tolerance 1e-3: tests/unit/assets/test_preprocessing.py) was measured on the CPU
only. Here each JPEG is decoded

- on the GPU by ``torchvision.io.decode_jpeg(..., device="cuda")``, which calls nvJPEG,
  the library DALI's mixed decoder uses (torchvision offers no chroma-upsampling option);
- on the CPU by Pillow (libjpeg, fancy upsampling: libjpeg's default, and TensorFlow's);
- where TensorFlow is installed, by ``tf.io.decode_jpeg`` with ``fancy_upscaling`` True
  and False (libjpeg with and without fancy upsampling, Pillow's accurate IDCT);
- where DALI sees the GPU, by our own pipeline's decoder on "mixed" with
  ``jpeg_fancy_upsampling`` True (what the repository ships) and False (DALI's default);

then each RGB image goes through the same preprocessing as ``dali/pipeline.py`` (central
crop of 87.5%, bilinear resize to 299x299 without antialiasing, x / 127.5 - 1), done here
in float64 with numpy for every decoder, so that only the decoders differ. The report
gives the largest absolute difference to Pillow's decoding per image and decoder, in
preprocessed units (the model's input scale) and in grey levels, against our tolerance of
1e-3.

The images: the cat photo the repository warms DALI up with
(``model_repository/dali/warmup/chelsea.jpg``, 4:2:0), scikit-image's sample photos where
scikit-image is installed, synthetic colour bars (sharp chroma edges, where upsampling
methods differ most) at 4:2:0, 4:2:2 and 4:4:4 (no chroma upsampling: a control), and any
JPEG named on the command line.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WARMUP_JPEG = ROOT / "model_repository" / "dali" / "warmup" / "chelsea.jpg"
IMAGE_SIZE = 299
CROP_DIVISOR = 16
#: The preprocessing parity bound of tests/unit/assets/test_preprocessing.py (an eighth of a level).
TOLERANCE = 1e-3
#: Stop starting new work after this many seconds (the check must end within 3 minutes).
DEADLINE_S = 150.0
#: Pillow's ``subsampling`` option: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}

Decoder = Callable[[bytes], np.ndarray]


def _axis_weights(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (low, high) and weights of a half-pixel bilinear resize along one axis."""
    source = np.clip((np.arange(out) + 0.5) * size / out - 0.5, 0, size - 1)
    low = np.floor(source).astype(int)
    return low, np.minimum(low + 1, size - 1), source - low


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """``dali/pipeline.py``'s crop, resize and scale, in float64: HWC in [-1, 1].

    Bilinear with half-pixel centres and no antialiasing, as DALI's ``INTERP_LINEAR`` with
    ``antialias=False`` and TensorFlow's ``resize(..., antialias=False)`` compute it.
    """
    height, width = rgb.shape[:2]
    top, left = height // CROP_DIVISOR, width // CROP_DIVISOR
    crop = rgb[top : height - top, left : width - left].astype(np.float64)
    low, high, weight = _axis_weights(crop.shape[0], IMAGE_SIZE)
    rows = crop[low] * (1 - weight)[:, None, None] + crop[high] * weight[:, None, None]
    low, high, weight = _axis_weights(crop.shape[1], IMAGE_SIZE)
    resized = rows[:, low] * (1 - weight)[None, :, None] + rows[:, high] * weight[None, :, None]
    return resized / 127.5 - 1.0


def pillow(data: bytes) -> np.ndarray:
    """Decode with libjpeg through Pillow (fancy upsampling, its default)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def nvjpeg(data: bytes) -> np.ndarray:
    """Decode with nvJPEG through torchvision, on the GPU."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    image = decode_jpeg(encoded, mode=ImageReadMode.RGB, device="cuda")
    return image.permute(1, 2, 0).cpu().numpy()


def tensorflow(fancy: bool) -> Decoder | None:
    """A libjpeg decoder through TensorFlow, fancy upsampling or not (None: no TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None

    def decode(data: bytes) -> np.ndarray:
        # INTEGER_ACCURATE is Pillow's IDCT (libjpeg's JDCT_ISLOW); TensorFlow's default,
        # the fast one, differs by up to 255 levels at saturated edges (seen here).
        return tf.io.decode_jpeg(
            data, channels=3, fancy_upscaling=fancy, dct_method="INTEGER_ACCURATE"
        ).numpy()

    return decode


def dali(fancy: bool) -> Decoder | None:
    """DALI's mixed decoder (nvJPEG) as dali/pipeline.py uses it (None: no DALI or no GPU)."""
    try:
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
        from nvidia.dali import pipeline_def
    except ImportError:
        return None

    @pipeline_def(batch_size=1, num_threads=2, device_id=0)
    def decode_only():
        encoded = fn.external_source(name="jpeg", device="cpu")
        return fn.decoders.image(
            encoded, device="mixed", output_type=types.RGB, jpeg_fancy_upsampling=fancy
        )

    try:
        pipe = decode_only()
        pipe.build()
    except RuntimeError:
        return None

    def decode(data: bytes) -> np.ndarray:
        pipe.feed_input("jpeg", [np.frombuffer(data, np.uint8)])
        (out,) = pipe.run()
        return np.array(out.as_cpu()[0])

    return decode


def colour_bars(subsampling: str) -> bytes:
    """Saturated vertical and horizontal colour bars, as a JPEG of the given subsampling."""
    from PIL import Image

    ys, xs = np.mgrid[0:480, 0:640]
    palette = np.array(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]]
    )
    rgb = palette[((xs // 37) + (ys // 29)) % len(palette)].astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(
        buffer, format="JPEG", quality=90, subsampling=SUBSAMPLING[subsampling]
    )
    return buffer.getvalue()


def images(extra: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, JPEG bytes) of every image the check decodes."""
    yield "warmup chelsea.jpg (4:2:0)", WARMUP_JPEG.read_bytes()
    for subsampling in SUBSAMPLING:
        yield f"colour bars ({subsampling})", colour_bars(subsampling)
    try:
        import skimage.data
        from PIL import Image
    except ImportError:
        pass
    else:
        for name in ("astronaut", "coffee", "rocket"):
            buffer = io.BytesIO()
            Image.fromarray(getattr(skimage.data, name)()).save(buffer, "JPEG", quality=90)
            yield f"skimage {name} (4:2:0)", buffer.getvalue()
    for path in extra:
        yield path.name, path.read_bytes()


def decoders() -> dict[str, Decoder]:
    """The decoders compared with Pillow's libjpeg, in the report's order."""
    found: dict[str, Decoder | None] = {
        "nvJPEG (torchvision, cuda)": nvjpeg,
        "DALI mixed, jpeg_fancy_upsampling=True (shipped)": dali(True),
        "DALI mixed, jpeg_fancy_upsampling=False (DALI default)": dali(False),
        "libjpeg (TensorFlow, fancy_upscaling=True)": tensorflow(True),
        "libjpeg (TensorFlow, fancy_upscaling=False)": tensorflow(False),
    }
    return {name: decode for name, decode in found.items() if decode is not None}


def compare(name: str, data: bytes, available: dict[str, Decoder]) -> list[dict]:
    """Max |decoder - Pillow| for one image, after the preprocessing."""
    reference = preprocess(pillow(data))
    rows = []
    for label, decode in available.items():
        try:
            got = preprocess(decode(data))
        except Exception as err:  # report every decoder, whatever fails
            rows.append({"image": name, "decoder": label, "error": f"{type(err).__name__}: {err}"})
            continue
        difference = float(np.abs(got - reference).max())
        rows.append(
            {
                "image": name,
                "decoder": label,
                "max_abs_diff": difference,
                "grey_levels": difference * 127.5,
                "within_tolerance": difference <= TOLERANCE,
            }
        )
    return rows


def environment() -> dict[str, str]:
    """The versions and the GPU the numbers come from."""
    import torch
    import torchvision

    return {
        "gpu": torch.cuda.get_device_name(0),
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
    }


def table(rows: list[dict]) -> str:
    """The report as a markdown table."""
    lines = [
        "| image | decoder | max abs diff (preprocessed) | grey levels | within 1e-3 |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['image']} | {row['decoder']} | {row['error']} | | |")
            continue
        lines.append(
            f"| {row['image']} | {row['decoder']} | {row['max_abs_diff']:.2e} | "
            f"{row['grey_levels']:.2f} | {'yes' if row['within_tolerance'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Decode, preprocess, compare; print the table; write JSON with ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jpegs", nargs="*", type=Path, help="more JPEG files to compare")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        import torch
        import torchvision  # noqa: F401 - nvJPEG's decoder
    except ImportError as err:
        print(f"this check needs PyTorch and torchvision with CUDA: {err}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU", file=sys.stderr)
        return 2
    started = time.monotonic()
    available, rows = decoders(), []
    for name, data in images(args.jpegs):
        if time.monotonic() - started > DEADLINE_S:
            rows.append({"image": name, "decoder": "-", "error": "skipped: out of time"})
            continue
        rows += compare(name, data, available)
    report = {"environment": environment(), "tolerance": TOLERANCE, "results": rows}
    print(json.dumps(report["environment"]))
    print(table(rows))
    print(f"{time.monotonic() - started:.1f} s")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
