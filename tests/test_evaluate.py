import json

import numpy as np
import pytest
import torch

from conftest import TINY_RUN
from siamkit.cli import main
from siamkit.config import build_config
from siamkit.evaluate import extract_features
from siamkit.evaluate.encoders import load_encoder, load_model
from siamkit.evaluate.linear import ProbeConfig, accuracy, linear_probe, linear_probe_augmented
from siamkit.evaluate.transfer import fit_logistic, logistic_transfer
from siamkit.models import build_backbone
from siamkit.pipeline import pretrain
from siamkit.results import table
from siamkit.runs import load_run

TINY = {**TINY_RUN, "train.epochs": 2}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "simsiam"
    pretrain(build_config({**TINY, "method.name": "simsiam"}), out, progress=False)
    return out


def _blobs(n=400, d=8, c=4, seed=0, spread=0.6):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(c, d, generator=g)
    y = torch.arange(n) % c
    return centres[y] + spread * torch.randn(n, d, generator=g), y


# ---- linear probe --------------------------------------------------------------------------------


def test_accuracy_by_hand():
    head = torch.nn.Linear(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        head.bias.zero_()
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [1.0, 0.5]])
    y = torch.tensor([0, 1, 2, 1])
    assert accuracy(head, x, y, topk=(1, 2)) == {"top1": 75.0, "top2": 100.0}


def test_linear_probe_learns_separable_features():
    x, y = _blobs()
    res = linear_probe(x[:300], y[:300], x[300:], y[300:], ProbeConfig(epochs=20, lr=0.5))
    assert res["top1"] > 95


def test_probing_leaves_the_backbone_bit_identical():
    from siamkit.data import load_digits

    backbone = build_backbone("resnet10_cifar", width=4).train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    train, test = load_digits("train").subset(128), load_digits("test").subset(64)
    f_test, y_test = extract_features(backbone, test, "digits", 32, normalize=False)
    f_train, y_train = extract_features(backbone, train, "digits", 32, normalize=False)
    linear_probe(f_train, y_train, f_test, y_test, ProbeConfig(epochs=2))
    linear_probe_augmented(backbone, train, f_test, y_test, "digits", 32, ProbeConfig(epochs=2, batch_size=64))
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert backbone.training  # its mode is restored


# ---- transfer ------------------------------------------------------------------------------------


def test_logistic_regression_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(n=300, spread=2.5)
    x = x.double()
    wd = 0.05
    w, b = fit_logistic(x, y, 4, wd, max_iter=500)
    # scikit-learn minimises C * sum_i CE_i + |W|^2 / 2, i.e. ours with wd = 1 / (C * n)
    ref = LogisticRegression(C=1 / (wd * len(x)), tol=1e-10, max_iter=5000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(w.numpy(), ref.coef_ - ref.coef_.mean(0), atol=2e-3)
    assert torch.equal((x @ w.T + b).argmax(1), torch.from_numpy(ref.predict(x.numpy())))


def test_transfer_picks_the_weight_decay_on_validation():
    x, y = _blobs(n=600, spread=2.0)
    res = logistic_transfer(x[:300], y[:300], x[300:400], y[300:400], x[400:], y[400:], grid=[1e-4, 1e-1, 1e5])
    assert res["wd"] != 1e5  # the strongest decay predicts one class on validation
    assert res["top1"] > 80 and set(res) == {"top1", "wd", "val_top1", "seconds"}


# ---- commands ------------------------------------------------------------------------------------


def test_eval_json_prints_one_object_and_records_it(run, capsys):
    assert main(["eval", "knn", "--checkpoint", str(run), "--dataset", "digits", "--json", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert result["eval"] == "knn" and result["k"] == 1 and 0 <= result["top1"] <= 100
    recorded = json.loads((run / "evals.jsonl").read_text().splitlines()[-1])
    assert recorded["top1"] == result["top1"]


def test_random_baseline_and_checkpoint_loading(run):
    enc = load_encoder("random:resnet10_cifar:4")
    assert enc.run_dir is None and enc.backbone.width == 4
    loaded = load_encoder(str(run / "checkpoint.pt"))
    model, cfg, _ = load_model(run / "checkpoint.pt")
    assert loaded.recipe == "digits" and cfg.method.name == "simsiam"
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.backbone.state_dict().values(), model.backbone.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="unknown backbone 'vit'"):
        load_encoder("random:vit")


def test_linear_transfer_tsne_commands(run, tmp_path, capsys):
    common = ["--checkpoint", str(run), "--dataset", "digits", "--device", "cpu", "--json"]
    assert main(["eval", "linear", *common, "--epochs", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 3
    assert main(["eval", "transfer", *common]) == 0
    assert json.loads(capsys.readouterr().out)["eval"] == "transfer"
    png = tmp_path / "tsne.png"
    assert main(["eval", "tsne", *common, "--png", str(png), "--points", "200"]) == 0
    assert png.stat().st_size > 10_000


def test_report_table_and_plots(run, tmp_path):
    other = tmp_path / "byol"
    pretrain(build_config({**TINY, "method.name": "byol"}), other, progress=False)
    assert main(["report", str(run), str(other), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| simsiam | simsiam |" in md and "| byol | byol |" in md
    for name in ("knn.png", "collapse.png", "loss.png"):
        assert (tmp_path / "report" / name).stat().st_size > 5_000
    assert "kNN at init" in table([load_run(run)])


def test_export_round_trips(run, tmp_path, capsys):
    sd_file, tv_file = tmp_path / "siamkit.pt", tmp_path / "tv.pt"
    assert (
        main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--format", "state_dict", "--out", str(sd_file)])
        == 0
    )
    saved = torch.load(sd_file, weights_only=False)
    model, _, _ = load_model(run / "checkpoint.pt")
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())
    # torchvision format needs width 64: a clear error for the tiny run
    assert main(["export", "--checkpoint", str(run), "--format", "torchvision", "--out", str(tv_file)]) == 2
    assert "torchvision's ResNets have width 64; this backbone has width 4" in capsys.readouterr().err


def test_torchvision_export_keys_load_into_a_torchvision_layout(tmp_path):
    from siamkit.models import SiameseNet
    from siamkit.runs import save_checkpoint as save_atomic

    cfg = build_config({"model.backbone": "resnet18", "data.dataset": "digits"})
    net = SiameseNet(cfg.model)
    save_atomic({"model": net.state_dict(), "config": cfg.to_dict(), "epoch": 0}, tmp_path / "ck.pt")
    out = tmp_path / "tv.pt"
    assert main(["export", "--checkpoint", str(tmp_path / "ck.pt"), "--format", "torchvision", "--out", str(out)]) == 0
    sd = torch.load(out)
    assert len(sd) == 120  # torchvision resnet18's 122 state_dict entries less fc.weight and fc.bias
    fresh = build_backbone("resnet18")
    fresh.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    net.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), net.backbone(x))


# ---- few labels and fine-tuning ------------------------------------------------------------------


def _two_tones(n=64, size=16, seed=0):
    """Dark and bright noise images, one class each: separable by their mean."""
    from siamkit.data import ImageSet

    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    base = torch.where(y[:, None, None, None] == 1, 170, 40)
    x = (base + torch.randint(0, 60, (n, 3, size, size), generator=g)).to(torch.uint8)
    return ImageSet("tones", ["dark", "bright"], y, size, images=x)


def test_finetune_learns_and_leaves_the_encoder_alone():
    from siamkit.evaluate.finetune import FinetuneConfig, finetune

    backbone = build_backbone("resnet10_cifar", 4)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    out = finetune(backbone, _two_tones(), _two_tones(seed=1), "digits", 16, FinetuneConfig(epochs=6, batch_size=16))
    assert out["top1"] >= 90.0  # a random network fine-tuned on an easy problem: the loop trains it
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())


def test_label_fraction_for_linear_and_finetune(run, capsys):
    from siamkit.evaluate import load_eval_data

    train = load_eval_data("digits").train
    per_class = round(0.1 * len(train) / len(train.classes))
    common = ["--checkpoint", str(run), "--dataset", "digits", "--device", "cpu", "--json", "--label-fraction", "0.1"]
    assert main(["eval", "linear", *common, "--epochs", "2"]) == 0
    linear = json.loads(capsys.readouterr().out)
    assert linear["label_fraction"] == 0.1 and linear["train_images"] == per_class * len(train.classes)
    assert main(["eval", "finetune", *common, "--epochs", "1", "--seed", "3"]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["eval"] == "finetune" and tuned["train_images"] == linear["train_images"] and 0 <= tuned["top1"] <= 100
    assert json.loads((run / "evals.jsonl").read_text().splitlines()[-1])["eval"] == "finetune"
    assert main(["eval", "linear", *common[:-1], "1.5"]) == 2
    assert "--label-fraction must lie in (0, 1]" in capsys.readouterr().err


def test_the_experiment_suite_runs_finetune(run):
    from siamkit.experiments.runner import evaluate

    assert evaluate(str(run), "finetune", {"dataset": "digits"}).kind == "finetune"
