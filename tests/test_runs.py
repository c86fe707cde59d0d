"""The registries, what a run records about its source, and resume rules (hostile cases: test_reliability.py)."""

import pytest

from conftest import TINY_RUN
from siamkit.config import build_config
from siamkit.errors import ConfigError, SiamkitError, TrainingError
from siamkit.pipeline import pretrain
from siamkit.registry import Registry
from siamkit.runs import RunFolder


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
    with pytest.raises(TrainingError, match=r"on resume \(1 epochs -> 2 epochs\): optim.schedule"):
        pretrain(build_config({**values, "train.epochs": 2}), tmp_path / "run", resume=True, progress=False)
