import torch

from conftest import TINY_RUN
from siamkit.experiments import EXPERIMENTS, Experiment, RunSpec, evals_for, run_experiment, run_status
from siamkit.runs import read_jsonl

PROTOCOL = {**TINY_RUN, "train.epochs": 1, "train.knn_every": 0}
EVAL = {"linear": {"dataset": "digits"}}


def test_run_ids_name_what_is_trained():
    assert RunSpec("simsiam", 1).run_id == "simsiam-s1"
    a = RunSpec("simsiam", 0, (("method.predictor", False),), tag="nopred")
    b = RunSpec("simsiam", 0, (("method.predictor", True),), tag="nopred")
    assert a.run_id != b.run_id and a.run_id.startswith("simsiam-nopred-")
    assert RunSpec("simsiam", 0, tag="2x", epoch_factor=2.0).config(PROTOCOL).train.epochs == 2
    # experiments share runs: fig. 4's SimSiam is table 1's seed 0
    assert {r.run_id for r in EXPERIMENTS["guiding"].runs} & {r.run_id for r in EXPERIMENTS["table1"].runs}


def test_runner_trains_evaluates_skips_and_resumes(tmp_path):
    exp = Experiment("tiny", "claim", (RunSpec("simsiam"), RunSpec("byol")))
    log: list[str] = []
    run_experiment(exp, tmp_path, PROTOCOL, EVAL, log=log.append)
    assert sum(line.startswith("[tiny] train") for line in log) == 2
    assert all(s.trained and s.evals_done == ["linear"] for s in (run_status(r, tmp_path, PROTOCOL) for r in exp.runs))
    random_evals = read_jsonl(tmp_path / "random-resnet10_cifar-w4" / "evals.jsonl")
    assert [e["eval"] for e in random_evals] == ["linear"]

    log.clear()
    run_experiment(exp, tmp_path, PROTOCOL, EVAL, log=log.append)
    assert log == []  # everything finished: nothing runs again

    longer = {**PROTOCOL, "train.epochs": 2}  # a longer protocol resumes the runs from their checkpoints
    run_experiment(Experiment("tiny", "claim", (RunSpec("simsiam"),), evals=()), tmp_path, longer, EVAL, log=log.append)
    assert log == ["[tiny] resume simsiam-s0: epoch 1/2"]
    assert run_status(RunSpec("simsiam"), tmp_path, longer).epochs_done == 2


def test_a_diverged_run_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    from siamkit.errors import NonFiniteLoss
    from siamkit.experiments import runner as loop

    real = loop.pretrain

    def pretrain(cfg, out, resume=False, progress=True):
        if cfg.method.name == "byol":
            out.mkdir(parents=True, exist_ok=True)
            raise NonFiniteLoss("the loss became nan at step 3")
        return real(cfg, out, resume, progress)

    monkeypatch.setattr(loop, "pretrain", pretrain)
    exp = Experiment("tiny", "claim", (RunSpec("byol"), RunSpec("simsiam")), evals=(), random_baseline=False)
    log: list[str] = []
    run_experiment(exp, tmp_path, PROTOCOL, EVAL, log=log.append)
    assert any("byol-s0 diverged: the loss became nan" in line for line in log)
    assert run_status(RunSpec("simsiam"), tmp_path, PROTOCOL).trained  # the next run still trained
    assert run_status(RunSpec("byol"), tmp_path, PROTOCOL).diverged.startswith("the loss became nan")
    log.clear()
    run_experiment(exp, tmp_path, PROTOCOL, EVAL, log=log.append)
    assert log == ["[tiny] skip byol-s0: diverged earlier (the loss became nan at step 3)"]


def test_random_baseline_has_the_runs_architecture(tmp_path, monkeypatch):
    """A protocol's backbone_args reach its random baseline (they were once dropped: the baseline
    was the backbone's default build, not the trained runs' architecture)."""
    from siamkit.experiments import runner as loop
    from siamkit.models import external as ext

    monkeypatch.setattr(ext, "_trusted", {"tiny_backbones:convnet"})
    protocol = {**PROTOCOL, "model.backbone": "tiny_backbones:convnet", "model.width": None,
                "model.backbone_args": {"width": 3}}  # fmt: skip
    seen = []
    real = loop.evaluate

    def evaluate(encoder, kind, data, folder=None):
        seen.append(encoder.backbone(torch.rand(2, 3, 16, 16)).shape[1])
        return real(encoder, kind, data, folder)

    monkeypatch.setattr(loop, "evaluate", evaluate)
    exp = Experiment("tiny", "claim", (), evals=("linear",))
    run_experiment(exp, tmp_path, protocol, EVAL, log=[].append)
    assert seen == [6]  # convnet(width=3): 2 * 3 features, not the default width's 16
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("random-")]
    assert folder.name == loop.random_folder(protocol)[1] != "random-tiny_backbones-convnet"
    assert [e["eval"] for e in read_jsonl(folder / "evals.jsonl")] == ["linear"]


def test_an_archived_run_is_done_on_a_new_machine(tmp_path):
    """A suite spans sessions whose files are lost: the committed archive of records must carry it."""
    exp = Experiment("tiny", "claim", (RunSpec("simsiam"), RunSpec("byol")))
    first, archive = tmp_path / "first", tmp_path / "archive"
    run_experiment(exp, first, PROTOCOL, EVAL, log=[].append, archive=archive)
    assert sorted(p.name for p in archive.iterdir()) == ["byol-s0", "random-resnet10_cifar-w4", "simsiam-s0"]
    assert not list(archive.rglob("*.pt"))  # records only, no weights

    log: list[str] = []
    second = tmp_path / "second"  # the first machine is gone
    statuses = run_experiment(exp, second, PROTOCOL, EVAL, log=log.append, archive=archive)
    assert log == [] and all(s.archived and s.trained for s in statuses)

    # an evaluation the archive lacks needs the weights: the run trains again, and is archived again
    more = Experiment("more", "claim", (RunSpec("simsiam"),), evals=("linear", "knn"), random_baseline=False)
    run_experiment(more, second, PROTOCOL, {**EVAL, "knn": {"dataset": "digits"}}, log=log.append, archive=archive)
    assert log[0] == "[more] archived simsiam-s0 has no checkpoint (missing knn): training it again"
    assert log[1:] == [
        "[more] train simsiam-s0: epoch 0/1",
        "[more] eval knn simsiam-s0",
        "[more] eval linear simsiam-s0",
    ]
    assert {e["eval"] for e in read_jsonl(archive / "simsiam-s0" / "evals.jsonl")} == {"knn", "linear"}


def test_every_evaluation_a_shared_run_needs_is_done_while_its_weights_exist():
    """guiding reports no evaluation, but its SimSiam is table 1's: linear, transfer and t-SNE too."""
    guiding = EXPERIMENTS["guiding"]
    assert evals_for(RunSpec("simsiam", 0), guiding, tuple(EXPERIMENTS.values())) == ["linear", "transfer", "tsne"]
    assert evals_for(RunSpec("simsiam-gsg-reverse", 0), guiding, tuple(EXPERIMENTS.values())) == []
