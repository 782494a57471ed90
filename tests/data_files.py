"""Small generated datasets, as bytes of the files a user would upload."""

import io
import zipfile

import numpy as np
from PIL import Image


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def sequences(n: int = 300, features: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    """Variable-length pen-stroke-like sequences (story 1): class 1 drifts up in feature 0, class 0 down.

    Returned in the upload form: ``x_values`` (all steps concatenated), ``x_lengths``, ``y``.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 30, n)
    y = rng.integers(0, 2, n)
    samples = []
    for length, label in zip(lengths, y, strict=True):
        steps = rng.normal(0, 0.3, (length, features))
        steps[:, 0] += np.linspace(0, 1, length) * (1 if label else -1)
        steps[:, 1] += 1.0  # no real step is all zeros: Masking(0.0) masks only the padding
        samples.append(steps)
    return {"x_values": np.concatenate(samples).astype("float32"), "x_lengths": lengths.astype("int64"),
            "y": y.astype("int64")}


def csv_bytes(n: int = 400, seed: int = 0) -> bytes:
    """A regression table with a header: target = 3a - 2b + noise; c is noise; color is a text column."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    target = 3 * a - 2 * b + rng.normal(0, 0.1, n)
    colors = rng.choice(["red", "green", "blue"], n)
    lines = ["a,b,c,color,target"]
    lines += [f"{a[i]:.5f},{b[i]:.5f},{c[i]:.5f},{colors[i]},{target[i]:.5f}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def image_png(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def stripes(vertical: bool, size: int, rng: np.random.Generator) -> np.ndarray:
    """Grey stripes, horizontal or vertical, with noise and a random phase."""
    phase = int(rng.integers(0, 4))
    line = ((np.arange(size) + phase) // 2 % 2) * 200 + 30
    pixels = np.tile(line, (size, 1)) if vertical else np.tile(line[:, None], (1, size))
    return np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)


def image_zip(per_class: int = 40, size: int = 16, seed: int = 0, root: str = "shapes/",
              extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of class folders (``<root>horizontal/``, ``<root>vertical/``) of PNG and JPEG images."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("horizontal", "vertical"):
            for i in range(per_class):
                fmt = "JPEG" if i % 4 == 0 else "PNG"
                suffix = "jpg" if fmt == "JPEG" else "png"
                archive.writestr(f"{root}{label}/{i:03d}.{suffix}",
                                 image_png(stripes(label == "vertical", size, rng), fmt))
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()
