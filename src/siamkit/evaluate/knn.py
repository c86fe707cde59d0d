"""k-nearest-neighbour classification on L2-normalised features (cosine similarity).

Majority vote (GSG's CIFAR-10 protocol, k = 1) or the similarity-weighted vote of Wu et al. 2018
(k = 200, temperature 0.1): each of the k neighbours adds ``exp(sim / T)`` to its class. Test
features are processed in chunks so memory stays ``O(chunk * N_train)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    k: int = 200,
    temperature: float | None = 0.1,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> Tensor:
    """Predicted class ``(N_test,)`` for each test feature.

    ``train_features : (N, F)`` and ``test_features : (M, F)`` L2-normalised; ``temperature=None``
    is the majority vote; ties between classes go to the lowest class index (deterministic).
    """
    if train_features.shape[0] == 0:
        raise ValueError("kNN needs a non-empty feature bank")
    k = min(k, train_features.shape[0])
    c = int(num_classes if num_classes is not None else int(train_labels.max()) + 1)
    preds = []
    for start in range(0, test_features.shape[0], chunk):
        sim = test_features[start : start + chunk] @ train_features.T  # (m, N)
        top_sim, top_idx = sim.topk(k, dim=1)  # (m, k), sorted by similarity
        top_labels = train_labels[top_idx]  # (m, k)
        weights = torch.ones_like(top_sim) if temperature is None else (top_sim / temperature).exp()
        votes = torch.zeros(top_sim.shape[0], c, device=sim.device, dtype=weights.dtype)
        votes.scatter_add_(1, top_labels, weights)
        preds.append(votes.argmax(1))  # argmax returns the lowest index among ties
    return torch.cat(preds)


def knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    k: int = 200,
    temperature: float | None = 0.1,
    chunk: int = 1024,
) -> float:
    """Top-1 accuracy in percent."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, num_classes, chunk)
    return 100.0 * (pred == test_labels).float().mean().item()
