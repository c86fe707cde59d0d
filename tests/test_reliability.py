"""Hostile input, damaged files, full disks and dying processes: what siamkit promises (README,
"What siamkit promises") under each. Every case ends in one clear line, never a traceback, and
never costs a run more than what its last checkpoint holds."""

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_RUN
from siamkit.cli import main
from siamkit.config import build_config
from siamkit.config.schema import SECTIONS
from siamkit.data import load_imagefolder
from siamkit.data.cifar import read_batch
from siamkit.errors import ConfigError, DataError, RunFolderError
from siamkit.pipeline import pretrain
from siamkit.runs import RunFolder, append_jsonl, load_checkpoint, read_jsonl
from siamkit.runs import files as run_files

RUN = {**TINY_RUN, "train.knn_every": 0, "data.train_subset": 128}
CLI_RUN = [f"--set={k}={v}" for k, v in RUN.items()] + ["--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch run (the tests copy it before changing anything)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    pretrain(build_config({**RUN, "train.epochs": 2}), out, progress=False)
    return out


def _one_line_error(capsys, *phrases):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    for p in phrases:
        assert p in err, err
    return err


# ---- checkpoints are data ------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "command",
    [
        ["eval", "knn", "--checkpoint", "{ck}", "--dataset", "digits"],
        ["export", "--checkpoint", "{ck}", "--out", "{tmp}/backbone.pt", "--format", "state_dict"],
        ["pretrain", "--resume", "--out", "{run}"],
    ],
)
def test_a_checkpoint_that_asks_to_run_code_is_refused_unrun(tmp_path, capsys, command):
    run, marker = tmp_path / "run", tmp_path / "ran"
    run.mkdir()
    torch.save({"format": "siamkit-checkpoint-v1", "config": _RunsCode(marker)}, run / "checkpoint.pt")
    args = [a.format(ck=run / "checkpoint.pt", run=run, tmp=tmp_path) for a in command]
    assert main(args) == 2
    _one_line_error(capsys, "cannot be read as a checkpoint", "loads checkpoints as data only")
    assert not marker.exists()


def test_a_checkpoint_in_the_old_layout_still_resumes(trained, tmp_path):
    """siamkit 0.1.0 pickled NumPy's RNG state as a tuple holding an ndarray."""
    run = shutil.copytree(trained, tmp_path / "run")
    ck = load_checkpoint(run)
    np.random.seed(3)
    ck["rng"]["numpy"] = np.random.get_state()
    torch.save(ck, run / "checkpoint.pt")
    assert isinstance(load_checkpoint(run)["rng"]["numpy"], tuple)
    pretrain(build_config({**RUN, "train.epochs": 3}), run, resume=True, progress=False)
    assert load_checkpoint(run)["epoch"] == 3


@pytest.mark.parametrize(("missing", "command"), [("optimizer", "pretrain"), ("model", "eval")])
def test_a_checkpoint_lacking_a_part_names_it(trained, tmp_path, capsys, missing, command):
    run = shutil.copytree(trained, tmp_path / "run")
    ck = load_checkpoint(run)
    del ck[missing]
    torch.save(ck, run / "checkpoint.pt")
    args = (
        ["pretrain", "--resume", "--out", str(run)]
        if command == "pretrain"
        else ["eval", "knn", "--checkpoint", str(run), "--dataset", "digits"]
    )
    assert main(args) == 2
    _one_line_error(capsys, f"has no {missing}")


def test_a_cifar_batch_that_asks_to_run_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _RunsCode(tmp_path / "ran"), "labels": [0]}))
    with pytest.raises(DataError, match=r"references posix\.system|references os\.system"):
        read_batch(path)
    assert not (tmp_path / "ran").exists()


# ---- a value typed is used or rejected -----------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "train.epochs must be > 0, got 0"),
        (["--lr", "0"], "optim.lr must be > 0, got 0"),
        (["--lr", "nan"], "optim.lr=nan: must be a finite number"),
        (["--lr", "inf"], "optim.lr=inf: must be a finite number"),
        (["--batch-size", "0"], "train.batch_size must be >= 2, got 0"),
        (["--batch-size", "1"], "train.batch_size must be >= 2, got 1"),
        (["--seed", "-1"], "train.seed must be >= 0 and <= 4294967295, got -1"),
    ],
)
def test_a_value_out_of_range_is_one_clear_line(tmp_path, capsys, flags, message):
    assert main(["pretrain", "--out", str(tmp_path / "run"), "--dataset", "digits", *flags]) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "run").exists()


def test_a_zero_flag_is_the_value_zero(tmp_path):
    from siamkit.cli.commands import config_from_args, overrides
    from siamkit.cli.parser import build_parser

    args = build_parser().parse_args(["pretrain", "--out", str(tmp_path), "--dataset", "digits", "--seed", "0"])
    assert overrides(args)["train.seed"] == 0  # kept, not dropped as falsy
    assert config_from_args(args).train.seed == 0


@pytest.mark.parametrize("key", [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in c.__dataclass_fields__.values()])
def test_every_numeric_key_declares_a_range_and_rejects_non_finite_values(key):
    section, name = key.split(".")
    f = SECTIONS[section].__dataclass_fields__[name]
    types = str(f.type)
    if "float" in types:
        for bad in ("nan", "inf", "-inf"):
            with pytest.raises(ConfigError, match=rf"{key}=.*must be a finite number"):
                build_config({"data.dataset": "digits", key: bad})
    if ("int" in types or "float" in types) and "bool" not in types:
        assert "lo" in f.metadata or "hi" in f.metadata, f"{key} declares no range"


# ---- run folders are never torn or mixed ---------------------------------------------------------


def test_a_torn_last_line_is_skipped_and_a_torn_middle_line_is_an_error(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')  # what a kill mid-write leaves
    assert read_jsonl(log) == [{"epoch": 1}, {"epoch": 2}]
    assert "torn last line 3" in capsys.readouterr().err
    append_jsonl(log, {"epoch": 3})  # the torn tail is cut before the next record
    assert read_jsonl(log) == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    log.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(RunFolderError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_jsonl(log)


def test_a_run_with_a_torn_log_reports_and_resumes(trained, tmp_path, capsys):
    run = shutil.copytree(trained, tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "lo')
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert main(["pretrain", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 0
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3]


HOLD = """
import time
from siamkit.runs import RunFolder
held = RunFolder({path!r}).locked()
held.__enter__()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with folder.locked(), pytest.raises(RunFolderError, match=rf"in use by another run \(pid {os.getpid()}\)"):  # noqa: SIM117
        with folder.locked():
            pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD.format(path=str(folder.path)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderError, match=rf"pid {holder.pid}"), folder.locked():
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with folder.locked():  # the dead holder's lock ended with it
        pass


# ---- a full disk ---------------------------------------------------------------------------------


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(trained, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(trained, tmp_path / "run")
    before = (run / "checkpoint.pt").read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"x" * 4096)  # the part that fitted
        raise RuntimeError(
            "[enforce fail at inline_container.cc:783] PytorchStreamWriter failed writing file data/3: "
            "file write failed"
        )

    monkeypatch.setattr(run_files.torch, "save", full_disk)
    assert main(["pretrain", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 2
    _one_line_error(
        capsys,
        f"no space left on the device while writing {run / 'checkpoint.pt'}",
        "the previous checkpoint is intact",
        "epoch 2",
    )
    assert (run / "checkpoint.pt").read_bytes() == before
    assert [p.name for p in run.iterdir() if ".tmp-" in p.name] == []  # no temporary file left
    monkeypatch.undo()
    assert main(["pretrain", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 0


def test_a_full_disk_while_recording_an_evaluation_prints_the_result_first(trained, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(trained, tmp_path / "run")

    class FullDisk:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_files, "open", FullDisk, raising=False)
    assert main(["eval", "knn", "--checkpoint", str(run), "--dataset", "digits", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["top1"] >= 0  # the result reached the user
    assert "no space left on the device while writing" in captured.err
    assert "the result above was not recorded" in captured.err and "Traceback" not in captured.err


# ---- images (the cases siamkit already handled) ---------------------------------------------------


def test_unreadable_images_are_listed_or_skipped(tmp_path, capsys):
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            for i in range(2):
                (tmp_path / split / c).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (12, 10), (40 * i, 90, 7)).save(tmp_path / split / c / f"{i}.png")
    bad = tmp_path / "train" / "dog" / "broken.png"
    bad.write_bytes((tmp_path / "train" / "dog" / "0.png").read_bytes()[:30])
    (tmp_path / "train" / "cat" / "notes.jpg").write_text("not an image")
    with pytest.raises(DataError) as e:
        load_imagefolder(tmp_path, "train", size=8)
    assert "2 unreadable image file(s)" in str(e.value) and str(bad) in str(e.value)
    assert "data.skip_bad_images=true" in str(e.value)
    assert len(load_imagefolder(tmp_path, "train", size=8, skip_bad=True)) == 4
    assert "skipping 2 unreadable" in capsys.readouterr().err


# ---- a process of a DDP group dies ---------------------------------------------------------------


def _rank_pid(launcher: subprocess.Popen, rank: int, timeout: float = 60) -> int:
    """The pid of the worker with RANK=rank among the launcher's children (Linux /proc)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for task in os.listdir(f"/proc/{launcher.pid}/task"):
            for child in Path(f"/proc/{launcher.pid}/task/{task}/children").read_text().split():
                try:
                    env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in env:
                    return int(child)
        time.sleep(0.1)
    raise AssertionError(f"no worker with RANK={rank}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc")
def test_a_killed_rank_ends_the_others_naming_it_and_the_checkpoint_resumes(tmp_path):
    run = tmp_path / "run"
    sets = [a for k, v in {**RUN, "data.train_subset": 1024}.items() for a in ("--set", f"{k}={v}")]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "siamkit", "pretrain", "--quiet", "--out", str(run), "--epochs", "3", *sets],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    victim = _rank_pid(launcher, 1)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() or not read_jsonl(run / "metrics.jsonl"):
        assert launcher.poll() is None and time.time() < deadline, launcher.stderr.read()
        time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    _, err = launcher.communicate(timeout=60)
    assert time.time() - t0 < 60 and launcher.returncode != 0
    assert "rank 0: lost rank 1 of the 2 processes" in err, err
    ck = load_checkpoint(run)
    assert ck["epoch"] >= 1 and ck["step_in_epoch"] == 0
    assert main(["pretrain", "--resume", "--out", str(run), "--quiet"]) == 0
    assert load_checkpoint(run)["epoch"] == 3
