"""Embeddings of any image files with a pretrained encoder, and their nearest neighbours.

emb, skipped = embed_images("runs/photos", ["photos/"])     # backbone features, one per image
emb.save("photos-emb")          # photos-emb.npy, .csv (row, path), .json (how), .parquet (pyarrow)
emb = Embeddings.load("photos-emb")
for rank, (row, cos) in enumerate(emb.neighbors(emb.row_of("photos/cat.jpg"), k=5), 1): ...
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from siamkit.data import center_normalize, scan_images
from siamkit.data.images import decode_files
from siamkit.errors import DataError
from siamkit.evaluate.encoders import load_model
from siamkit.precision import autocast
from siamkit.runs import checkpoint_file

CHUNK = 1024  # images decoded at a time: memory stays bounded for any number of files


def image_files(inputs: list[str | Path]) -> list[Path]:
    """The image files named by ``inputs``: files as given, folders scanned at any depth (image
    extensions in any case, hidden entries skipped), in the order given, each file once."""
    out: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            out += [item / e.rel for e in scan_images(item)]
        elif item.is_file():
            out.append(item)
        else:
            raise DataError(f"--images {item}: no such file or folder")
    seen: set[Path] = set()
    unique = [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]
    if not unique:
        raise DataError(f"no image files in {', '.join(map(str, inputs))}")
    return unique


@dataclass
class Embeddings:
    """``vectors[i]`` embeds the image ``paths[i]``; ``about``: how they were made (checkpoint,
    features or projector, resolution), enough to embed a new query the same way."""

    vectors: np.ndarray  # (N, D) float32
    paths: list[str]
    about: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def stem(path: str | Path) -> Path:
        p = Path(path)
        return p.with_suffix("") if p.suffix.lower() in (".npy", ".csv", ".json", ".parquet") else p

    def save(self, out: str | Path) -> list[Path]:
        """``OUT.npy`` (the vectors), ``OUT.csv`` (row, path), ``OUT.json`` (``about``), and
        ``OUT.parquet`` (path and embedding columns) when pyarrow is installed."""
        stem = self.stem(out)
        stem.parent.mkdir(parents=True, exist_ok=True)
        written = [stem.with_suffix(".npy"), stem.with_suffix(".csv"), stem.with_suffix(".json")]
        np.save(written[0], self.vectors.astype(np.float32))
        with open(written[1], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["row", "path"])
            w.writerows(enumerate(self.paths))
        written[2].write_text(json.dumps({**self.about, "count": len(self.paths), "dim": self.dim}, indent=2) + "\n")
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return written
        table = pa.table({"path": self.paths, "embedding": list(self.vectors.astype(np.float32))})
        pq.write_table(table, stem.with_suffix(".parquet"))
        return [*written, stem.with_suffix(".parquet")]

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        stem = cls.stem(path)
        try:
            vectors = np.load(stem.with_suffix(".npy"), allow_pickle=False)
            with open(stem.with_suffix(".csv"), newline="") as f:
                paths = [r["path"] for r in csv.DictReader(f)]
            about = json.loads(stem.with_suffix(".json").read_text()) if stem.with_suffix(".json").is_file() else {}
        except (OSError, ValueError, KeyError) as e:
            raise DataError(
                f"{stem}.npy/.csv cannot be read as siamkit embeddings ({e}); write them with siamkit embed"
            ) from None
        if vectors.ndim != 2 or len(vectors) != len(paths):
            raise DataError(f"{stem}: {vectors.shape} vectors for {len(paths)} paths; the files do not belong together")
        return cls(vectors.astype(np.float32), paths, about)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row_of(self, path: str | Path) -> int | None:
        """The row of an image path (as stored, or the same file), or ``None``."""
        text = str(path)
        if text in self.paths:
            return self.paths.index(text)
        target = Path(text).resolve()
        return next((i for i, p in enumerate(self.paths) if Path(p).resolve() == target), None)

    def neighbors(self, query: np.ndarray | int, k: int) -> list[tuple[int, float]]:
        """The ``k`` rows most similar to ``query`` (a row, excluded from its own neighbours, or a
        vector) by cosine similarity, most similar first: ``[(row, cosine), ...]``."""
        v = torch.from_numpy(self.vectors)
        q = v[query] if isinstance(query, int) else torch.as_tensor(query, dtype=torch.float32)
        cos = F.normalize(v, dim=1) @ F.normalize(q, dim=0)
        if isinstance(query, int):
            cos[query] = -float("inf")
        top = torch.topk(cos, min(k, len(cos) - (1 if isinstance(query, int) else 0)))
        return [(int(i), float(c)) for c, i in zip(top.values, top.indices, strict=True)]


def _decode_chunk(paths: list[Path], size: int) -> tuple[list[int], list[np.ndarray], list[tuple[str, str]]]:
    ok, arrays, bad = [], [], []
    for i, r in enumerate(decode_files(paths, size)):
        if isinstance(r, str):
            bad.append((str(paths[i]), r))
        else:
            ok.append(i)
            arrays.append(r)
    return ok, arrays, bad


@torch.no_grad()
def embed_images(
    checkpoint: str | Path,
    images: list[str | Path],
    *,
    projector: bool = False,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress: bool = True,
) -> tuple[Embeddings, list[tuple[str, str]]]:
    """Embed every image file of ``images`` (files and folders, see :func:`image_files`) with the
    checkpoint's frozen backbone (or backbone + projector), at its evaluation resolution
    (``data.image_size``) and normalisation. Returns the embeddings and the ``(file, reason)`` of unreadable files."""
    if batch_size < 1:
        raise DataError(f"--batch-size must be >= 1, got {batch_size}")
    model, cfg, _ = load_model(checkpoint)
    net = model.encode if projector else model.backbone
    model.to(device).eval()
    files = image_files(images)
    recipe, size, decode = cfg.data.resolved_recipe(), cfg.data.crop_size(), cfg.data.decode_size()
    vectors, paths, skipped = [], [], []
    bar = tqdm(total=len(files), desc="embed", unit="img", disable=not progress, file=sys.stderr)
    for start in range(0, len(files), CHUNK):
        chunk = files[start : start + CHUNK]
        ok, arrays, bad = _decode_chunk(chunk, decode)
        skipped += bad
        paths += [str(chunk[i]) for i in ok]
        for b in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.stack(arrays[b : b + batch_size])).to(device)
            with autocast(precision, torch.device(device)):
                vectors.append(net(center_normalize(x, recipe, size)).float().cpu())
        bar.update(len(chunk))
    bar.close()
    if not paths:
        raise DataError(
            f"none of the {len(files)} files could be read as an image; the first: {skipped[0][0]}: {skipped[0][1]}"
        )
    about = {
        "checkpoint": str(checkpoint_file(checkpoint).resolve()),
        "output": "projector" if projector else "backbone",
        "image_size": size,
        "recipe": recipe,
        "precision": precision,
        "skipped": len(skipped),
    }
    return Embeddings(torch.cat(vectors).numpy(), paths, about), skipped


def embed_query(emb: Embeddings, image: str | Path, device: torch.device | str = "cpu") -> np.ndarray:
    """One new image embedded the way ``emb`` was (its checkpoint, output and precision)."""
    if "checkpoint" not in emb.about:
        raise DataError("these embeddings do not say which checkpoint made them; query by row index or a stored path")
    one, bad = embed_images(
        emb.about["checkpoint"],
        [image],
        projector=emb.about.get("output") == "projector",
        device=device,
        precision=emb.about.get("precision", "fp32"),
        progress=False,
    )
    if bad:
        raise DataError(f"--query {image}: {bad[0][1]}")
    return one.vectors[0]


def contact_sheet(query: str, neighbors: list[tuple[str, float]], path: str | Path, thumb: int = 128) -> Path:
    """A PNG row: the query image, then each neighbour with its cosine similarity underneath."""
    from PIL import Image, ImageDraw, ImageOps

    from siamkit.data.images import to_rgb

    def tile(file: str, caption: str, frame: tuple[int, int, int]) -> Image.Image:
        canvas = Image.new("RGB", (thumb + 8, thumb + 36), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, 0, thumb + 7, thumb + 7), outline=frame, width=3)
        try:
            with Image.open(file) as im:
                im = ImageOps.exif_transpose(to_rgb(im))
                im.thumbnail((thumb, thumb))
                canvas.paste(im, (4 + (thumb - im.width) // 2, 4 + (thumb - im.height) // 2))
        except (OSError, ValueError):
            caption = "unreadable"
        name = Path(file).name
        draw.text((4, thumb + 10), caption, fill=(0, 0, 0))
        draw.text((4, thumb + 22), name if len(name) <= thumb // 6 else name[: thumb // 6 - 1] + "~", fill=(90, 90, 90))
        return canvas

    tiles = [tile(query, "query", (200, 30, 30))] + [tile(f, f"cosine {c:+.3f}", (210, 210, 210)) for f, c in neighbors]
    sheet = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, (i * t.width, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
