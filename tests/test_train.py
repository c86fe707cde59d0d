"""The loop: outputs, resume (epoch boundary, SIGINT, SIGKILL), non-finite loss, DDP."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from conftest import TINY_RUN
from siamkit import errors, pipeline, precision
from siamkit.config import Config, build_config
from siamkit.runs import load_checkpoint
from siamkit.train import telemetry, trainer

TINY = {**TINY_RUN, "train.log_every": 2}


def _cfg(**values):
    return build_config({**TINY, **{k.replace("__", "."): v for k, v in values.items()}})


def _weights(run):
    ck = load_checkpoint(run / "checkpoint.pt")
    return ck["model"], ck["target"], ck["optimizer"]["state"]


def test_cpu_steal_share_by_hand(monkeypatch):
    """Two timed segments: 3 of 40 jiffies, then 1 of 60 were stolen: 4 / 100 of the epoch."""
    readings = iter([(13.0, 140.0), (101.0, 1000.0), (102.0, 1060.0)])
    monkeypatch.setattr(telemetry, "cpu_times", lambda: next(readings))
    acc = telemetry.EpochMeter()
    acc.timed(time.perf_counter(), (10.0, 100.0))  # reads (13, 140)
    acc.timed(time.perf_counter(), telemetry.cpu_times())  # starts at (101, 1000), ends at (102, 1060)
    assert acc.steal_share() == pytest.approx(0.04)
    again = telemetry.EpochMeter.from_state(acc.state(), torch.device("cpu"))  # a checkpoint mid-epoch keeps it
    assert again.steal_share() == pytest.approx(0.04)
    old = {k: v for k, v in acc.state().items() if not k.startswith("cpu_")}  # checkpoints from before
    assert telemetry.EpochMeter.from_state(old, torch.device("cpu")).steal_share() is None
    monkeypatch.setattr(telemetry, "cpu_times", lambda: None)  # no /proc/stat: nothing recorded, no error
    acc = telemetry.EpochMeter()
    acc.timed(time.perf_counter(), None)
    assert acc.steal_share() is None


def test_cpu_times_reads_proc_stat():
    times = telemetry.cpu_times()
    if times is None:
        pytest.skip("no /proc/stat here")
    steal, total = times
    assert 0 <= steal <= total and total > 0


def _assert_identical(a, b):
    for part_a, part_b in zip(a, b, strict=True):
        if part_a is None:
            assert part_b is None
            continue
        assert part_a.keys() == part_b.keys()
        for k in part_a:
            x, y = part_a[k], part_b[k]
            if isinstance(x, dict):
                for kk in x:
                    assert torch.equal(x[kk], y[kk]), (k, kk)
            else:
                assert torch.equal(x, y), k


def test_outputs_and_metrics(tmp_path):
    cfg = _cfg(method__name="byol-gsg", train__epochs=2, train__precision="bf16")  # bf16 + channels_last
    row = pipeline.pretrain(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]  # epoch 0: the kNN monitor at initialisation
    assert set(rows[0]) == {"epoch", "step", "knn_top1", "knn1_top1"}
    for key in (
        "epoch",
        "loss",
        "lr",
        "z_std",
        "img_per_s",
        "seconds",
        "knn_top1",
        "knn1_top1",
        "tau",
        "case0",
    ):
        assert key in rows[-1], key
    assert rows[-1] == row
    if telemetry.cpu_times() is not None:  # Linux: the host's share of the machine's CPU time is recorded
        assert 0.0 <= rows[-1]["cpu_steal"] <= 1.0
    assert Config.from_dict(yaml.safe_load((run / "config.yaml").read_text())) == cfg
    info = json.loads((run / "run.json").read_text())
    assert info["steps_per_epoch"] == 4 and info["machine"] and info["threads"] >= 1  # times need their machine
    assert list((run / "tensorboard").iterdir())
    ck = load_checkpoint(run / "checkpoint.pt")
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (2, 0, 8)
    assert Config.from_dict(ck["config"]) == cfg
    assert not list(run.glob(".*tmp*"))  # atomic writes leave no temporary files
    with pytest.raises(errors.TrainingError, match="already holds a run"):
        pipeline.pretrain(cfg, run, progress=False)


@pytest.mark.parametrize(("method", "local_crops"), [("byol-gsg", 0), ("simsiam", 0), ("byol", 2)])
def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path, method, local_crops):
    def cfg(epochs):
        return _cfg(method__name=method, train__epochs=epochs, data__local_crops=local_crops)

    pipeline.pretrain(cfg(3), tmp_path / "whole", progress=False)
    pipeline.pretrain(cfg(1), tmp_path / "parts", progress=False)
    pipeline.pretrain(cfg(3), tmp_path / "parts", resume=True, progress=False)
    _assert_identical(_weights(tmp_path / "whole"), _weights(tmp_path / "parts"))
    rows = (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [0, 1, 2, 3]


def test_a_run_killed_before_its_first_checkpoint_starts_again_with_one_epoch_0(tmp_path):
    """Killed in epoch 1 there is no checkpoint, only epoch 0 of metrics.jsonl: the run starts
    from nothing, measures the random init again, and replaces that row instead of adding one."""
    run = tmp_path / "run"
    pipeline.pretrain(_cfg(train__epochs=1), run, progress=False)
    (run / "checkpoint.pt").unlink()
    pipeline.pretrain(_cfg(train__epochs=2), run, progress=False)
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]


def _spawn(out, epochs, method="byol-gsg"):
    args = [
        sys.executable,
        "-m",
        "siamkit",
        "pretrain",
        "--quiet",
        "--out",
        str(out),
        "--method",
        method,
        "--epochs",
        str(epochs),
    ]
    for k, v in TINY.items():
        args += ["--set", f"{k}={v}"]
    args += ["--set", "data.train_subset=1024", "--set", "train.knn_every=0"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(run, epoch, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        path = run / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= epoch:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def _reference(tmp_path, epochs):
    ref = tmp_path / "ref"
    proc = _spawn(ref, epochs)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    return _weights(ref)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_or_interrupted_run_resumes_to_the_same_weights(tmp_path, sig):
    run = tmp_path / "run"
    proc = _spawn(run, epochs=3)
    _wait_for_epoch(run, 1, proc)
    time.sleep(0.3)  # into epoch 2
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    ck = load_checkpoint(run / "checkpoint.pt")
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert ck["step_in_epoch"] == 0 and ck["epoch"] < 3  # the last complete epoch
    else:
        assert code == 130, proc.stderr.read()
        assert ck["epoch"] < 3
    proc2 = subprocess.run(
        [sys.executable, "-m", "siamkit", "pretrain", "--quiet", "--resume", "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc2.returncode == 0, proc2.stderr
    _assert_identical(_reference(tmp_path, 3), _weights(run))
    epochs = [json.loads(r)["epoch"] for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    pipeline.pretrain(_cfg(train__epochs=1), run, progress=False)
    before = (run / "checkpoint.pt").read_bytes()
    real_step = trainer.step
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, metrics = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # the third step of the resumed run: global step 7
            loss = loss * float("nan")
            metrics["loss"] = loss.detach()
        return loss, metrics

    monkeypatch.setattr(trainer, "step", poisoned)
    with pytest.raises(errors.NonFiniteLoss) as e:
        pipeline.pretrain(_cfg(train__epochs=3), run, resume=True, progress=False)
    assert "at step 7 (epoch 2, batch 3)" in str(e.value)
    assert str(run / "checkpoint.pt") in str(e.value)
    assert (run / "checkpoint.pt").read_bytes() == before


@pytest.mark.parametrize("local_crops", [0, 2])
def test_ddp_two_processes_match_one(tmp_path, local_crops):
    """Also with multi-crop: each rank crops its rows of the global batch's small crops, and the
    network takes views and small crops in one forward, so DDP sees one forward per step."""
    common = ["--method", "byol", "--epochs", "1", "--quiet"]
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["train.knn_every=0", "data.train_subset=128"]
    sets += [f"data.local_crops={local_crops}"]
    sets = [arg for s in sets for arg in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "siamkit", "pretrain", "--out", str(tmp_path / "one"), *common, *sets],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "siamkit",
            "pretrain",
            "--out",
            str(tmp_path / "two"),
            *common,
            *sets,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    # Two steps of batch 64 (32 per rank). The global BatchNorm and the gradient all-reduce sum in
    # another order, so the runs agree up to float rounding, which this tiny network amplifies
    # ~100x per step: after two steps we measured 3.5e-5 (and the same size between 1- and
    # 2-thread single-process runs). Per-rank BatchNorm statistics would differ by ~1e-2.
    for part_a, part_b in zip(a[:2], b[:2], strict=True):
        for k in part_a:
            if part_a[k].is_floating_point():
                torch.testing.assert_close(part_b[k], part_a[k], rtol=0, atol=2e-4, msg=k)
            else:
                assert torch.equal(part_a[k], part_b[k]), k
    assert "module." not in "".join(load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"])
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # only rank 0 writes
    # the logged loss is the mean over both ranks: the single-process loss up to rounding
    loss_one = json.loads((tmp_path / "one" / "metrics.jsonl").read_text())["loss"]
    assert json.loads(rows[0])["loss"] == pytest.approx(loss_one, abs=1e-4)


def test_the_trainer_crops_with_crop_min_scale(tmp_path):
    """A minimum crop area of the whole image leaves one crop possible: the image itself."""
    from siamkit.train import distributed

    t = trainer.Trainer(_cfg(data__crop_min_scale=1.0), tmp_path / "run", distributed.setup("cpu"), False, None)
    boxes = t.views.main.sample(16, 2, 32, torch.Generator().manual_seed(0)).box
    assert (boxes == torch.tensor([0.0, 0.0, 32.0, 32.0])).all()
    default = trainer.Trainer(_cfg(), tmp_path / "run2", distributed.setup("cpu"), False, None)
    assert (default.views.main.sample(16, 2, 32, torch.Generator().manual_seed(0)).box[..., 2:] < 32).any()


@pytest.mark.skipif(precision.cpu_is_avx2_only(), reason="train.compile is refused on AVX2-only CPUs (it hung)")
def test_a_compiled_run_trains_the_same_network(tmp_path, monkeypatch):
    """train.compile changes how the step runs, not what it computes: the same weights (up to
    the fused kernels' rounding) under the same checkpoint keys, and it resumes uncompiled."""
    compiled_nets = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda net, **kw: compiled_nets.append(net) or real_compile(net, **kw))
    pipeline.pretrain(_cfg(train__epochs=1), tmp_path / "eager", progress=False)
    assert not compiled_nets
    pipeline.pretrain(_cfg(train__epochs=1, train__compile=True), tmp_path / "compiled", progress=False)
    assert len(compiled_nets) == 1  # the training network went through torch.compile
    eager, compiled = load_checkpoint(tmp_path / "eager")["model"], load_checkpoint(tmp_path / "compiled")["model"]
    assert list(compiled) == list(eager)  # the plain model's keys
    for k, v in eager.items():
        torch.testing.assert_close(compiled[k].float(), v.float(), rtol=1e-3, atol=1e-4, msg=k)
    pipeline.pretrain(_cfg(train__epochs=2), tmp_path / "compiled", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "compiled")["epoch"] == 2


def test_compile_is_refused_on_an_avx2_only_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_is_avx2_only", lambda: True)
    with pytest.raises(errors.TrainingError, match=r"this CPU \(AVX2, no AVX-512\).*set train.compile=false"):
        pipeline.pretrain(_cfg(train__epochs=1, train__compile=True), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_compile_without_a_compiler_says_so(tmp_path, monkeypatch):
    from siamkit.train import setup

    monkeypatch.setattr(setup.shutil, "which", lambda name: None)
    with pytest.raises(errors.TrainingError, match=r"train.compile=true on the CPU needs a C\+\+ compiler"):
        pipeline.pretrain(_cfg(train__epochs=1, train__compile=True), tmp_path / "run", progress=False)
