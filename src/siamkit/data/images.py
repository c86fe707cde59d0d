"""Decoding one image file to a fixed-size RGB uint8 array, whatever its mode."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".pgm",
    ".pbm",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
)


class BadImageError(Exception):
    """An image file that cannot be decoded (unreadable, truncated, not an image)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB.

    Grayscale (``L``, ``1``), palette (``P``, with or without transparency), ``RGBA``/``LA``
    (alpha dropped after compositing on black, what ``convert`` does), ``CMYK``, and 16-bit or
    float grayscale (``I;16*``, ``I``, ``F``), which ``convert("RGB")`` would clip at 255 instead of
    rescaling: those are scaled from their bit depth to 0..255 first.
    """
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 257.0  # 65535 -> 255
        elif img.mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")  # resolves palette transparency before the alpha is dropped
    return img if img.mode == "RGB" else img.convert("RGB")


def resize_center(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bilinear, antialiased) and centre-crop a square."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


# Pillow's own bomb threshold (about 89 megapixels); above it a file is refused, not decoded
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


def decode_image(path: str | Path, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to ``(3, size, size)`` uint8 (EXIF orientation applied). Raises
    :class:`BadImageError` naming the file when it cannot be read in full, or when its header
    claims more than ``max_pixels`` pixels (a decompression bomb), before any pixel is decoded.

    JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers ``size`` on the
    shorter side (Pillow's ``draft``): a 4000x3000 photo shrunk to 64 px decodes about 30x faster."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise BadImageError(path, f"decompression bomb: {w}x{h} = {w * h:,} pixels > {max_pixels:,}")
            if img.format == "JPEG" and min(w, h) > 2 * size:
                img.draft("RGB", (size * w // min(w, h), size * h // min(w, h)))
            img.load()  # a truncated file fails here, not later inside a worker
            img = ImageOps.exif_transpose(img)
            img = resize_center(to_rgb(img), size)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from None


def decode_files(paths: Sequence[str | Path], size: int, threads: int | None = None) -> Iterator[np.ndarray | str]:
    """:func:`decode_image` of each of ``paths``, in order, on a pool of threads (Pillow decodes
    outside the GIL): the array, or the reason a file could not be decoded."""

    def one(path: str | Path) -> np.ndarray | str:
        try:
            return decode_image(path, size)
        except BadImageError as e:
            return e.reason

    with ThreadPoolExecutor(max_workers=threads or min(8, 2 * (os.cpu_count() or 1))) as pool:
        yield from pool.map(one, paths, chunksize=32)
