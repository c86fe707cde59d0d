"""--time-budget: schedules planned over training time, the stop, and resume."""

import argparse
import itertools
import math
import signal
import subprocess
import sys
import time

import pytest
from tqdm import tqdm

from conftest import TINY_RUN
from siamkit.cli import main
from siamkit.cli.parser import duration
from siamkit.config import OptimConfig, build_config
from siamkit.errors import ConfigError, TrainingError
from siamkit.evaluate import monitor
from siamkit.models import tau_at
from siamkit.pipeline import pretrain
from siamkit.runs import load_checkpoint, read_jsonl
from siamkit.schedules import ramp_size
from siamkit.train import trainer
from siamkit.train.optim import lr_at
from siamkit.train.telemetry import SECONDS_BAR

RUN = {**TINY_RUN, "train.knn_every": 0, "data.train_subset": 128, "train.epochs": 10_000}


def test_durations_by_hand():
    assert duration("90s") == 90 and duration("60m") == 3600 and duration("1.5h") == 5400
    assert duration("1h30m") == 5400 and duration("2m30s") == 150 and duration("45") == 45
    for bad in ("", "1x", "m", "-5m", "0s"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_the_budget_bar_counts_whole_seconds():
    n, total, elapsed = 16.971798295991903, 2022.0, 17.0
    line = tqdm.format_meter(n, total, elapsed, prefix="simsiam", postfix="loss=-0.1", bar_format=SECONDS_BAR)
    assert "| 17/2022 s [00:17<" in line and line.endswith(", loss=-0.1]") and "16.97" not in line


def test_schedules_over_the_budget_by_hand():
    cos = OptimConfig(schedule="cosine")
    assert lr_at(cos, 0.1, 7, 100, 10, progress=0.0) == pytest.approx(0.1)
    assert lr_at(cos, 0.1, 7, 100, 10, progress=0.5) == pytest.approx(0.05)
    assert lr_at(cos, 0.1, 7, 100, 10, progress=1.0) == pytest.approx(0.0)
    warm = OptimConfig(schedule="cosine", warmup_epochs=1)  # 100 steps of ramp, times the cosine
    assert lr_at(warm, 0.1, 49, 100, 10, progress=0.25) == pytest.approx(0.1 * 0.5 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(OptimConfig(lr=0.06), 0.06, 7, 100, 10, progress=0.9) == 0.06  # constant stays constant
    assert tau_at("cosine", 0.996, 3, 10, progress=0.5) == pytest.approx(1 - 0.004 * 0.5)
    assert tau_at("cosine", 0.996, 3, 10) == tau_at("cosine", 0.996, 3, 10, progress=0.3)  # steps vs time


class FakeClock:
    """perf_counter for the trainer: each reading advances ``tick`` seconds, so a run's training
    time, and with it its schedule and its stop, are exact."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def test_a_budget_stops_the_run_and_spans_its_schedule(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer.time, "perf_counter", FakeClock(0.5))
    lrs = []
    real = trainer.lr_at
    monkeypatch.setattr(trainer, "lr_at", lambda *a: lrs.append(real(*a)) or lrs[-1])
    values = {**RUN, "optim.schedule": "cosine", "train.time_budget": 10.0}
    row = pretrain(build_config(values), tmp_path / "run", progress=False)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert row["trained_seconds"] >= 10.0 and rows[-1] == row
    assert 1 < len(rows) < 10_000 and "knn_top1" in row  # stopped by the budget, then evaluated
    assert lrs[-1] < 0.05 * lrs[0]  # the cosine reached (nearly) zero at the end of the budget
    assert all(a >= b for a, b in itertools.pairwise(lrs))  # and only fell
    ck = load_checkpoint(tmp_path / "run")
    assert ck["trained_seconds"] == row["trained_seconds"] and ck["step_in_epoch"] == 0
    # resuming a spent run trains nothing more
    before = ck["global_step"]
    pretrain(build_config(values), tmp_path / "run", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "run")["global_step"] == before


def test_the_epochs_cap_a_budget(tmp_path):
    row = pretrain(
        build_config({**RUN, "train.epochs": 2, "train.time_budget": 3600.0}), tmp_path / "r", progress=False
    )
    assert row["epoch"] == 2 and row["trained_seconds"] < 3600


def test_a_new_budget_on_resume_is_refused_under_a_cosine_schedule(tmp_path):
    values = {**RUN, "optim.schedule": "cosine", "train.time_budget": 1.0}
    pretrain(build_config(values), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match=r"a 1 s budget -> a 2 s budget"):
        pretrain(build_config({**values, "train.time_budget": 2.0}), tmp_path / "run", resume=True, progress=False)


def test_an_interrupted_budget_run_resumes_with_the_time_it_had_trained(tmp_path):
    # 2 steps an epoch and a budget many epochs long, so the stop after two epochs comes well
    # before the budget is spent even on a slow machine (a 6 s budget once ran out first on one)
    run, budget = tmp_path / "run", 30
    sets = [a for k, v in RUN.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "siamkit", "pretrain", "--quiet", "--out", str(run), "--time-budget", f"{budget}s"]
    proc = subprocess.Popen([*cmd, *sets], stderr=subprocess.PIPE, text=True)

    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() or len(read_jsonl(run / "metrics.jsonl")) < 2:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, proc.stderr.read()
    stopped = load_checkpoint(run)["trained_seconds"]
    assert 0 < stopped < budget
    assert main(["pretrain", "--resume", "--out", str(run), "--quiet"]) == 0
    rows = read_jsonl(run / "metrics.jsonl")
    assert budget <= rows[-1]["trained_seconds"] < budget + 2  # the budget counted the time before the stop
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize("method", sorted(__import__("siamkit.registry", fromlist=["METHODS"]).METHODS.names()))
def test_the_speedrun_preset_builds_for_every_method(method):
    cfg = build_config({"method.name": method, "data.data_root": "/data"}, preset="speedrun")
    assert cfg.train.time_budget == 3600 and cfg.train.epochs >= 100  # the budget, not the epochs, ends it
    assert cfg.optim.schedule == "cosine"  # decays over the budget (the lr's progress is the time spent)
    assert cfg.data.augmentation().crop_scale == (0.2, 1.0)  # measured better than the recipe's 0.08
    assert (cfg.data.train_crop_size(), cfg.data.crop_size()) == (24, 32)  # trains at 24 px, evaluates at 32
    assert (cfg.model.proj_dim, cfg.model.proj_hidden, cfg.model.pred_hidden) == (512, 512, 128)
    assert cfg.method.spec().label


def test_progressive_sizes_by_hand():
    assert [ramp_size(16, 32, p, 0.5) for p in (0.0, 0.24, 0.25, 0.49, 0.5, 1.0)] == [16, 16, 24, 24, 32, 32]
    assert ramp_size(20, 32, 0.1, 0.5) == 20  # 22.4 px rounds down to 16, never below the start
    assert ramp_size(16, 32, 0.0, 0.0) == 32  # until = 0: the final size throughout
    assert ramp_size(160, 224, 0.5, 1.0) == 192


@pytest.mark.parametrize("start,final,until", [(8, 32, 0.5), (12, 32, 0.75), (16, 32, 1.0), (96, 224, 0.3)])
def test_progressive_sizes_grow_to_the_final_size(start, final, until):
    sizes = [ramp_size(start, final, k / 1000, until) for k in range(1001)]
    assert sizes[0] == start and all(s == final for s, k in zip(sizes, range(1001), strict=True) if k / 1000 >= until)
    assert all(a <= b for a, b in itertools.pairwise(sizes))  # only grows
    assert all(s in (start, final) or s % 8 == 0 for s in sizes)  # a few sizes, not one per step


def _record_sizes(monkeypatch):
    """Spy on the trainer's step and the monitor: the training views' and the evaluated images' sizes."""
    seen, evaluated = [], []
    real_step, real_extract = trainer.step, monitor.extract_features

    def step(net, spec, views, *rest):
        seen.append(views.shape[-1])
        return real_step(net, spec, views, *rest)

    def extract(backbone, data, **kw):
        evaluated.append(kw["size"])
        return real_extract(backbone, data, **kw)

    monkeypatch.setattr(trainer, "step", step)
    monkeypatch.setattr(monitor, "extract_features", extract)
    return seen, evaluated


def test_progressive_resolution_over_a_budget(tmp_path, monkeypatch):
    """The crops follow the ramp over the training clock; evaluation stays at the final size."""
    monkeypatch.setattr(trainer.time, "perf_counter", FakeClock(0.5))
    seen, evaluated = _record_sizes(monkeypatch)
    values = {**RUN, "train.time_budget": 12.0, "data.progressive_from": 16, "data.progressive_until": 0.5}
    pretrain(build_config(values), tmp_path / "run", progress=False)
    assert seen[0] == 16 and seen[-1] == 32 and sorted(seen) == seen and set(seen) == {16, 24, 32}
    assert evaluated and set(evaluated) == {32}  # the monitor ran at 32 px throughout


def test_a_smaller_training_crop_than_evaluation_size(tmp_path, monkeypatch):
    """data.train_size: every training crop at 24 px, the monitor at image_size (32 px)."""
    seen, evaluated = _record_sizes(monkeypatch)
    cfg = build_config({**RUN, "train.epochs": 2, "data.train_size": 24})
    assert (cfg.data.crop_size(), cfg.data.train_crop_size(), cfg.data.crop_size_at(0.0)) == (32, 24, 24)
    pretrain(cfg, tmp_path / "run", progress=False)
    assert set(seen) == {24} and evaluated and set(evaluated) == {32}
    ramp = build_config({**RUN, "data.train_size": 24, "data.progressive_from": 16}).data
    assert [ramp.crop_size_at(p) for p in (0.0, 0.49, 0.5, 1.0)] == [16, 16, 24, 24]  # grows to train_size


def test_a_progressive_run_keeps_its_length_on_resume(tmp_path):
    """The ramp is planned over the run's length, as a cosine lr is: a new length is refused."""
    values = {**RUN, "train.epochs": 2, "data.progressive_from": 16}
    pretrain(build_config(values), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match=r"2 epochs -> 3 epochs\): data.progressive_from=16 is planned"):
        pretrain(build_config({**values, "train.epochs": 3}), tmp_path / "run", resume=True, progress=False)


def test_a_preset_training_size_is_not_kept_for_another_image_size():
    with pytest.raises(ConfigError, match=r"preset speedrun trains on 24 px crops .* data.image_size=64 give"):
        build_config({"data.data_root": "/data", "data.image_size": 64}, preset="speedrun")
    cfg = build_config({"data.data_root": "/data", "data.image_size": 64, "data.train_size": 48}, preset="speedrun")
    assert (cfg.data.train_crop_size(), cfg.data.crop_size()) == (48, 64)


def test_progressive_resolution_is_checked():
    with pytest.raises(
        ConfigError, match=r"data.progressive_from=40 exceeds the final training crop size 32 \(data.image_size\)"
    ):
        build_config({**RUN, "data.progressive_from": 40})
    with pytest.raises(
        ConfigError, match=r"progressive_from=28 exceeds the final training crop size 24 \(data.train_size\)"
    ):
        build_config({**RUN, "data.train_size": 24, "data.progressive_from": 28})
    with pytest.raises(ConfigError, match=r"data.progressive_until must be > 0 and <= 1, got 1.5"):
        build_config({**RUN, "data.progressive_from": 16, "data.progressive_until": 1.5})
    with pytest.raises(ConfigError, match=r"data.progressive_until must be > 0 and <= 1, got 0"):
        build_config({**RUN, "data.progressive_from": 16, "data.progressive_until": 0.0})
    with pytest.raises(ConfigError, match=r"data.progressive_until=0.5 needs data.progressive_from"):
        build_config({**RUN, "data.progressive_until": 0.5})
