"""Evaluation: frozen features, kNN (and, later, linear probe, transfer, t-SNE, reports)."""

from siamkit.evaluate.features import extract_features
from siamkit.evaluate.knn import knn_accuracy, knn_predict

__all__ = ["extract_features", "knn_accuracy", "knn_predict"]
