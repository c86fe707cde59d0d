"""Typed evaluation results, and the record each one leaves in ``evals.jsonl``.

Every result carries what was evaluated (``checkpoint``, ``dataset``, ``epoch``, ``precision``)
and its own numbers; :meth:`EvalResult.to_record` gives the JSON object that ``--json`` prints and
``evals.jsonl`` keeps, with ``eval`` naming the kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    kind: ClassVar[str] = ""
    checkpoint: str
    dataset: str
    epoch: int | None
    precision: str

    def to_record(self) -> dict[str, Any]:
        fields = [f.name for f in dataclasses.fields(self)]
        head = ["checkpoint", "dataset", "epoch", "precision"]
        return {
            **{k: getattr(self, k) for k in head},
            "eval": self.kind,
            **{k: getattr(self, k) for k in fields if k not in head},
        }

    def summary(self) -> str:
        """One line for people."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class KnnResult(EvalResult):
    kind: ClassVar[str] = "knn"
    top1: float
    k: int
    weighted: bool
    temperature: float | None
    train_images: int
    test_images: int
    seconds: float

    def summary(self) -> str:
        vote = f"weighted (T={self.temperature})" if self.weighted else "majority"
        return f"kNN top-1 {self.top1:.2f}% (k={self.k}, {vote} vote) on {self.dataset}"


@dataclass(frozen=True, kw_only=True)
class LinearResult(EvalResult):
    kind: ClassVar[str] = "linear"
    top1: float
    top5: float
    seconds: float
    epochs: int
    protocol: str
    augment: bool
    label_fraction: float | None = None  # None: every training label
    train_images: int | None = None

    def summary(self) -> str:
        return f"linear probe top-1 {self.top1:.2f}% on {self.dataset}{_labels(self.label_fraction, self.train_images)}"


@dataclass(frozen=True, kw_only=True)
class FinetuneResult(EvalResult):
    kind: ClassVar[str] = "finetune"
    top1: float
    top5: float
    seconds: float
    epochs: int
    lr: float
    label_fraction: float | None
    train_images: int

    def summary(self) -> str:
        return f"fine-tuned top-1 {self.top1:.2f}% on {self.dataset}{_labels(self.label_fraction, self.train_images)}"


def _labels(fraction: float | None, images: int | None) -> str:
    return "" if fraction is None else f" with {fraction:g} of the labels ({images} images)"


@dataclass(frozen=True, kw_only=True)
class TransferResult(EvalResult):
    kind: ClassVar[str] = "transfer"
    top1: float
    wd: float
    val_top1: float
    seconds: float
    train_images: int
    val_images: int

    def summary(self) -> str:
        return f"transfer (logistic regression) top-1 {self.top1:.2f}% on {self.dataset}, wd {self.wd:.2g}"


@dataclass(frozen=True, kw_only=True)
class TsneResult(EvalResult):
    kind: ClassVar[str] = "tsne"
    png: str
    points: int

    def summary(self) -> str:
        return f"wrote {self.png}"
