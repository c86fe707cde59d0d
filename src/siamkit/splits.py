"""The stratified split used wherever a fixed, class-balanced part of a labelled set is taken."""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels,
    *,
    train_size: int | float | None = None,
    test_size: int | float | None = None,
    seed: int = 0,
    sort: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, rest)`` of a class-stratified split of ``labels`` (``(N,)`` array or
    tensor): scikit-learn's ``train_test_split`` with ``stratify``, so it is a function of the
    labels, the sizes and ``seed`` only. ``sort=False`` keeps scikit-learn's shuffled order."""
    from sklearn.model_selection import train_test_split

    y = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    kept, rest = train_test_split(
        np.arange(len(y)), train_size=train_size, test_size=test_size, stratify=y, random_state=seed
    )
    return (np.sort(kept), np.sort(rest)) if sort else (kept, rest)


def stratified_subset(labels, n: int, seed: int = 0) -> np.ndarray:
    """At most ``n`` sorted indices, stratified by class; all of them when ``n >= len(labels)``."""
    if n >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, train_size=n, seed=seed)[0]
