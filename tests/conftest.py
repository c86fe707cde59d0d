import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the loop references in tests/reference.py

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def _cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(autouse=True)
def _image_cache(_cache_root, monkeypatch):
    """Image-folder caches go to a temporary folder, never the user's ~/.cache (subprocesses too)."""
    monkeypatch.setenv("SIAMKIT_CACHE", str(_cache_root))


# The smallest real run: 256 digits, a width-4 ResNet-10, fp32 on the CPU (a few seconds an epoch).
TINY_RUN = {
    "data.dataset": "digits",
    "data.train_subset": 256,
    "model.backbone": "resnet10_cifar",
    "model.width": 4,
    "model.proj_dim": 32,
    "model.proj_hidden": 32,
    "model.pred_hidden": 8,
    "train.batch_size": 64,
    "train.precision": "fp32",
    "train.device": "cpu",
    "train.knn_k": 10,
}


# tests/extras need timm and torchvision: `make test-extras` runs them in their own venv
collect_ignore = [] if os.environ.get("SIAMKIT_EXTRAS") == "1" else ["extras"]
