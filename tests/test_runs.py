"""The run folder's files, the registries, and what a run records about its source."""

import pickle

import pytest

from conftest import TINY_RUN
from siamkit.config import build_config
from siamkit.data.cifar import read_batch
from siamkit.errors import ConfigError, DataError, RunFolderError, SiamkitError, TrainingError
from siamkit.pipeline import pretrain
from siamkit.registry import Registry
from siamkit.runs import RunFolder, append_jsonl, read_jsonl


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


def test_a_cifar_batch_that_asks_to_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(DataError, match=r"references builtins\.print"):
        read_batch(path)


def test_registry_lookup_suggests_the_closest_name():
    reg = Registry("thing", "x.thing")
    reg.register("alpha", 1)
    reg.register("beta")(2)
    assert reg.get("beta") == 2 and reg.names() == ["alpha", "beta"] and "alpha" in reg
    with pytest.raises(
        ConfigError, match=r"unknown thing 'alpah'; choose one of alpha, beta \(did you mean 'alpha'\?\)"
    ):
        reg.get("alpah")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 3)
    assert issubclass(ConfigError, SiamkitError) and issubclass(TrainingError, SiamkitError)


def test_run_json_records_the_source_revision(tmp_path):
    cfg = build_config({**TINY_RUN, "train.epochs": 1, "train.knn_every": 0, "data.train_subset": 128})
    pretrain(cfg, tmp_path / "run", progress=False)
    source = RunFolder(tmp_path / "run").read_info()["source"]
    assert source["version"] == "0.1.0"
    assert source["commit"] == "unknown" or len(source["commit"]) == 40
    assert source["dirty"] in (True, False, "unknown")


def test_a_longer_resume_is_refused_when_a_schedule_spans_the_run(tmp_path):
    values = {**TINY_RUN, "train.knn_every": 0, "data.train_subset": 128, "optim.schedule": "cosine"}
    pretrain(build_config({**values, "train.epochs": 1}), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match=r"cannot change its length on resume \(1 -> 2 epochs\): optim.schedule"):
        pretrain(build_config({**values, "train.epochs": 2}), tmp_path / "run", resume=True, progress=False)


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_ends_with_it(tmp_path):
    import os

    folder = RunFolder(tmp_path / "run")
    held = folder.locked()
    held.__enter__()
    with pytest.raises(RunFolderError, match=rf"in use by another run \(pid {os.getpid()}\)"), folder.locked():
        pass
    held.__exit__(None, None, None)
    with folder.locked():  # released: taken again
        pass
