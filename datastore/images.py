"""Image-folder uploads: a ``.zip`` of ``<class>/<image>`` files, as Keras's
``image_dataset_from_directory`` reads a folder.

Class names are the folder names, sorted; a sample's label is its folder's
index. One enclosing folder (``faces/<class>/...``) is looked through. Files
that are not ``.png``/``.jpg``/``.jpeg``, hidden files and ``__MACOSX`` are left
out, as Keras leaves them out. Every image is decoded once here, with its
pixel count capped, so a file that does not decode is refused at upload, not
in the middle of a training; memory per image is bounded (JPEGs decode at a
reduced scale, statistics read a subsample of at most 512 px a side). The files are kept as uploaded (renamed by
sample index); the worker decodes and resizes them to the job's
``image_size``/``color_mode`` each epoch.
"""

import math
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from datastore.archive import checked_members, extract, open_zip
from datastore.describe import RunningStats
from datastore.errors import DatasetFileError
from datastore.layout import DatasetWriter
from datastore.limits import Budget, Limits

EXTENSIONS = {".png", ".jpg", ".jpeg"}
FORMATS = {"PNG", "JPEG"}
STATS_IMAGES = 500  # images whose pixels make the statistics, evenly spaced
STATS_SIDE = 512  # statistics read a sample of at most this many pixels on the long side of each image


def _visible(path: PurePosixPath) -> bool:
    return not any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


def _class_paths(paths: list[PurePosixPath]) -> list[PurePosixPath]:
    """Paths relative to the folder whose subfolders are the classes."""
    tops = {p.parts[0] for p in paths}
    if len(tops) == 1 and all(len(p.parts) >= 3 for p in paths):
        return [PurePosixPath(*p.parts[1:]) for p in paths]
    return paths


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def _check(image: Image.Image, member: str, limits: Limits) -> None:
    loc = ("file", member)
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise DatasetFileError(
            f"the image '{member}' is {width}x{height} pixels, more than the limit of {limits.max_image_pixels}"
            " (a decompression bomb?)", loc,
        )
    if image.format not in FORMATS:
        raise DatasetFileError(f"the file '{member}' is {image.format or 'not an image'}, not PNG or JPEG", loc)
    if image.format == "JPEG" and image.mode not in ("L", "RGB"):  # TensorFlow cannot decode CMYK JPEGs
        raise DatasetFileError(f"the JPEG image '{member}' is in {image.mode} mode; save it as RGB or grayscale", loc)


def _open_checked(path: Path, member: str, limits: Limits) -> tuple[Image.Image, tuple[int, int]]:
    """Open and decode one image, refusing what TensorFlow could not decode and decompression bombs.

    Returns the decoded image and its size as stored. A JPEG is decoded at a reduced scale (libjpeg
    still reads every block of the file), so its memory stays small however many pixels it has; a
    PNG is decoded whole, at most ``max_image_pixels`` pixels of at most 4 bytes."""
    image = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
            _check(image, member, limits)
            size = image.size
            if image.format == "JPEG":
                image.draft(image.mode, (STATS_SIDE, STATS_SIDE))
            image.load()
        except DatasetFileError:
            if image is not None:
                image.close()
            raise
        except _DECODE_ERRORS as exc:
            if image is not None:
                image.close()
            raise DatasetFileError(f"the image '{member}' does not decode: {exc}", ("file", member)) from exc
    return image, size


def _stats_pixels(image: Image.Image) -> np.ndarray:
    """The image as RGB, every k-th pixel of every k-th row so that the long side is at most STATS_SIDE:
    an unbiased sample of its pixels at a bounded cost, whatever its size."""
    step = max(1, math.ceil(max(image.size) / STATS_SIDE))
    if step > 1:
        image = image.resize((max(1, image.width // step), max(1, image.height // step)), Image.Resampling.NEAREST)
    return np.asarray(image.convert("RGB"))


def ingest_images(source: Path, writer: DatasetWriter, limits: Limits) -> dict[str, dict[str, Any]]:
    """Unpack and check the images; returns the description entries of ``x`` (images) and ``y`` (labels)."""
    with open_zip(source, ".zip of class folders of images", max_members=limits.max_members) as archive:
        members = [(info, path) for info, path in checked_members(archive, limits) if _visible(path)]
        images = [(info, path) for info, path in members if path.suffix.lower() in EXTENSIONS]
        relative = _class_paths([path for _, path in images])
        labelled = [(r.parts[0], str(r), info)
                    for r, (info, _) in zip(relative, images, strict=True) if len(r.parts) >= 2]
        if not labelled:
            raise DatasetFileError(
                "the archive holds no images in class folders; expected <class>/<image>.png or .jpg "
                f"(found {len(members)} files, {len(images)} of them images)"
            )
        classes = sorted({label for label, _, _ in labelled})
        label_of = {name: index for index, name in enumerate(classes)}
        labelled.sort(key=lambda item: (label_of[item[0]], item[1]))
        (writer.directory / "images").mkdir()
        budget = Budget(limits.max_unpacked_bytes)
        picked = set(_stats_sample(len(labelled)).tolist())
        stats = RunningStats(3)
        files, sizes, modes = [], [], {}
        for index, (_, _, info) in enumerate(labelled):
            name = f"images/{index:06d}{PurePosixPath(info.filename).suffix.lower()}"
            extract(archive, info, writer.directory / name, budget)
            image, size = _open_checked(writer.directory / name, info.filename, limits)
            with image:
                sizes.append(size)
                modes[image.mode] = modes.get(image.mode, 0) + 1
                if index in picked:
                    stats.update(_stats_pixels(image))
            files.append(name)
    labels = np.array([label_of[label] for label, _, _ in labelled], np.int64)
    writer.add_images("x", files)
    np.save(path := writer.new_file(), labels)
    writer.add_dense("y", path)
    writer.classes = classes
    return {"x": _image_entry(stats, len(picked), sizes, modes)}


def _stats_sample(count: int) -> np.ndarray:
    """Indices of the images whose pixels make the statistics: all, or STATS_IMAGES evenly spaced."""
    if count <= STATS_IMAGES:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, STATS_IMAGES).astype(np.int64))


def _image_entry(stats: RunningStats, picked: int, sizes: list[tuple[int, int]],
                 modes: dict[str, int]) -> dict[str, Any]:
    """Sizes and modes of every image; pixel statistics (as RGB, 0-255) of the sampled images."""
    widths = np.array([w for w, _ in sizes])
    heights = np.array([h for _, h in sizes])
    return {
        "stats": stats.as_json(rows=picked, sampled=picked < len(sizes)),
        "image_sizes": {
            "height": {"min": int(heights.min()), "max": int(heights.max()), "mean": float(heights.mean())},
            "width": {"min": int(widths.min()), "max": int(widths.max()), "mean": float(widths.mean())},
        },
        "modes": modes,
    }
