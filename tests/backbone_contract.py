"""What every backbone must support, end to end through the command line: pretrain, resume,
export (state dict and safetensors), reload into the library's own module, and kNN. The main
suite runs it on a ``package.module:factory`` backbone; ``make test-extras`` on timm and
torchvision models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from siamkit.cli import main
from siamkit.evaluate import load_model
from siamkit.runs import load_checkpoint

TINY = [
    "data.dataset=digits",
    "data.train_subset=128",
    "model.proj_dim=32",
    "model.proj_hidden=32",
    "model.pred_hidden=8",
    "train.batch_size=32",
    "train.precision=fp32",
    "train.device=cpu",
    "train.knn_every=0",
]


def run_contract(
    tmp_path: Path, backbone: list[str], fresh: Callable[[], nn.Module], method: str = "simsiam", size: int = 32
) -> dict:
    """Pretrain ``backbone`` (flags) one epoch at ``size`` px, resume to two, export, reload into
    ``fresh()`` and check the features agree; returns what it measured."""
    run = tmp_path / "run"
    sets = [a for s in [*TINY, f"data.image_size={size}"] for a in ("--set", s)]
    base = ["pretrain", "--method", method, "--out", str(run), "--quiet", *backbone, *sets]
    assert main([*base, "--epochs", "1"]) == 0
    first = load_checkpoint(run / "checkpoint.pt")["model"]
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["epoch"] == 2
    assert any(not torch.equal(first[k], ck["model"][k]) for k in first if first[k].is_floating_point())

    model, _, _ = load_model(run)
    model.eval()
    x = torch.rand(4, 3, size, size)
    with torch.no_grad():
        ours = model.backbone(x)
    out = {}
    for fmt, suffix in (("backbone", ".pt"), ("safetensors", ".safetensors")):
        path = tmp_path / f"encoder{suffix}"
        assert main(["export", "--checkpoint", str(run), "--format", fmt, "--out", str(path), *_trust(backbone)]) == 0
        state = load_file(str(path)) if suffix == ".safetensors" else torch.load(path, weights_only=True)
        other = fresh()
        other.load_state_dict(state)  # strict: the library's own keys, nothing missing or extra
        other.eval()
        with torch.no_grad():
            torch.testing.assert_close(other(x), ours, rtol=1e-5, atol=1e-5)
        out[fmt] = len(state)

    # the exported weights start a new run (model.init), and a kNN evaluation runs on the result
    init_run = tmp_path / "init"
    init = ["--set", f"model.init={tmp_path / 'encoder.safetensors'}", "--epochs", "1"]
    assert main([*base[:3], "--out", str(init_run), *base[5:], *init]) == 0
    assert "loaded" in json.loads((init_run / "run.json").read_text())["init"]
    knn = ["eval", "knn", "--checkpoint", str(run), "--dataset", "digits", "--k", "5", *_trust(backbone)]
    assert main(knn) == 0
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert evals[-1]["eval"] == "knn" and 0.0 <= evals[-1]["top1"] <= 100.0
    out["feature_dim"] = ours.shape[1]
    return out


def _trust(backbone: list[str]) -> list[str]:
    spec = backbone[backbone.index("--backbone") + 1]
    return ["--trust-backbone", spec] if not spec.startswith(("timm:", "torchvision:")) else []
