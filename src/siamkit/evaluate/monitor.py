"""The kNN monitor of pretraining: how good the frozen backbone is, epoch by epoch."""

from __future__ import annotations

from torch import nn

from siamkit.config import Config
from siamkit.data import ImageSet
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.knn import knn_accuracy


def knn_monitor(cfg: Config):
    """A :data:`siamkit.train.Monitor`: weighted kNN (k, T from the config) and 1-NN accuracy of
    the frozen backbone on the held-out split; the bank is the training split without augmentation
    (optionally a fixed stratified subset of ``train.knn_train_subset`` images). Features are
    extracted on the backbone's device, at the run's precision (fp32 for fp16 off CUDA)."""
    tc = cfg.train

    def monitor(backbone: nn.Module, train: ImageSet, test: ImageSet) -> dict[str, float]:
        device = next(backbone.parameters()).device
        kw = dict(
            recipe=cfg.data.resolved_recipe(),
            size=cfg.data.crop_size(),
            device=device,
            precision=tc.precision if tc.precision != "fp16" or device.type == "cuda" else "fp32",
            channels_last=tc.use_channels_last(device.type),
            num_workers=cfg.data.num_workers,
        )
        bank = train.subset(tc.knn_train_subset, seed=tc.seed) if tc.knn_train_subset is not None else train
        f_train, y_train = extract_features(backbone, bank, **kw)
        f_test, y_test = extract_features(backbone, test, **kw)
        return {
            "knn_top1": knn_accuracy(f_train, y_train, f_test, y_test, tc.knn_k, tc.knn_temperature),
            "knn1_top1": knn_accuracy(f_train, y_train, f_test, y_test, k=1, temperature=None),
        }

    return monitor
