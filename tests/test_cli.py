import pytest

from siamkit.cli import main

TINY = [
    "--dataset", "digits", "--backbone", "resnet10_cifar", "--batch-size", "64", "--epochs", "1",
    "--set", "model.width=4", "--set", "model.proj_dim=16", "--set", "model.proj_hidden=16",
    "--set", "model.pred_hidden=8", "--set", "data.train_subset=128", "--set", "train.knn_k=5",
    "--precision", "fp32", "--device", "cpu", "--quiet",
]  # fmt: skip


def test_methods_and_presets(capsys):
    assert main(["methods"]) == 0
    assert "byol-gsg-reverse" in capsys.readouterr().out
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "gsg-cifar10" in out and "GSG Table 1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "simclr"], "unknown method 'simclr'; choose one of simsiam"),
        (["--set", "optim.lrate=1"], "unknown config key 'optim.lrate'"),
        (["--set", "optim.lr"], "expected key=value"),
        (["--dataset", "cifar10"], "needs --data-root"),
        (["--dataset", "cifar10", "--data-root", "/nonexistent"], "/nonexistent does not exist"),
        (["--precision", "fp16", "--dataset", "digits"], "fp16 needs CUDA"),
        (["--preset", "huge"], "unknown preset 'huge'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, capsys, tmp_path):
    code = main(["pretrain", "--out", str(tmp_path / "run"), "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_pretrain_then_resume_refuses_to_change_the_method(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--method", "simsiam", "--out", str(out), *TINY]) == 0
    assert "done:" in capsys.readouterr().out
    assert main(["pretrain", "--resume", "--out", str(out), "--method", "byol"]) == 2
    assert "cannot change method.name" in capsys.readouterr().err
    assert main(["pretrain", "--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert main(["pretrain", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_demo_prints_both_banks_with_the_seed_given(tmp_path, capsys):
    """One epoch of the real demo: the seed typed is the run's, both banks are printed for both
    encoders, and the gain row is the pretrained row minus the random one."""
    import yaml

    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seed 3." in printed
    assert "3 labels per class" in printed and "all 1,347 labels" in printed
    table = printed.split("frozen backbone features:")[1].splitlines()[2:5]
    assert [line.split()[0] for line in table] == ["random", "simsiam-gsg,", "gain"]
    (r_few, r_full), (p_few, p_full), gains = ([float(v.rstrip("%")) for v in line.split()[-2:]] for line in table)
    assert all(0.0 <= v <= 100.0 for v in (r_few, r_full, p_few, p_full))
    assert gains == pytest.approx([p_few - r_few, p_full - r_full], abs=0.11)
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["seed"] == 3
