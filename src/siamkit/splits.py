"""The stratified split used wherever a fixed, class-balanced part of a labelled set is taken."""

from __future__ import annotations

import numpy as np

from siamkit.errors import ConfigError


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


def balanced_fraction(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``fraction`` of ``labels``, balanced per class: ``round(fraction * N / C)``
    images (at least one) from each of the ``C`` classes, at random with ``seed``; a class with
    fewer gives all it has. SimCLR's 1 % and 10 % ImageNet subsets are drawn this way."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--label-fraction must lie in (0, 1], e.g. 0.01 or 0.1; got {fraction}")
    y = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    classes = np.unique(y)
    per_class = max(1, round(fraction * len(y) / len(classes)))
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(kept))
