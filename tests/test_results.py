"""The results page builder: archive, tables (mean ± std over seeds), markers."""

import json

import pytest
import yaml

from siamkit.experiments import DIVERGED, Experiment, RunSpec
from siamkit.results import (
    archive_runs,
    check_reproduction,
    experiment_table,
    fill_markers,
    mean_spread,
    seed_spread,
    write_results,
)


def fake_run(root, run_id, knn, knn1, z_std, seconds, epochs=2, evals=(), planned=2):
    """A run folder as the trainer leaves it: epoch 0 (random init) then one row per epoch."""
    path = root / run_id
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"train": {"epochs": planned}, "model": {"proj_dim": 64}}))
    rows = [{"epoch": 0, "step": 0, "knn_top1": 30.0, "knn1_top1": 25.0}]
    rows += [
        {"epoch": e, "knn_top1": knn - (epochs - e), "knn1_top1": knn1, "z_std": z_std, "seconds": seconds}
        for e in range(1, epochs + 1)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "evals.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    (path / "checkpoint.pt").write_bytes(b"not archived")
    return path


def test_mean_spread_by_hand():
    assert mean_spread([40.0, 42.0]) == "41.0 ± 1.4"  # sample std: sqrt(((-1)^2 + 1^2) / 1) = 1.414
    assert mean_spread([40.0]) == "40.0"
    assert mean_spread([]) == "-"


def test_table_has_random_init_first_and_means_over_finished_seeds(tmp_path):
    root, archive = tmp_path / "runs", tmp_path / "archive"
    fake_run(root, "simsiam-s0", 40.0, 35.0, 0.02, 60.0, evals=[{"eval": "linear", "top1": 50.0}])
    fake_run(root, "simsiam-s1", 42.0, 37.0, 0.04, 120.0, evals=[{"eval": "linear", "top1": 52.0}])
    fake_run(root, "byol-s0", 45.0, 40.0, 0.03, 60.0, epochs=1)  # still training: epoch 1 of 2
    fake_run(root, "byol-s1", 20.0, 10.0, 0.0, 60.0, epochs=1)
    (root / "byol-s1" / DIVERGED).write_text(json.dumps({"error": "nan"}))
    (root / "random-resnet10_cifar-w32").mkdir()
    (root / "random-resnet10_cifar-w32" / "evals.jsonl").write_text(json.dumps({"eval": "linear", "top1": 33.0}))
    ids = archive_runs(root, archive)
    assert "random-resnet10_cifar-w32" in ids and not (archive / "simsiam-s0" / "checkpoint.pt").exists()

    exp = Experiment("t", "claim", tuple(RunSpec(m, s) for m in ("simsiam", "byol") for s in (0, 1)))
    lines = experiment_table(exp, archive, {"linear": 33.0}).splitlines()
    assert lines[2] == "| random init | 4 | 25.0 ± 0.0 | 30.0 ± 0.0 | 33.0 | - | - |"
    # minutes: 2 epochs x 60 s and 2 x 120 s
    assert lines[3] == "| `simsiam` | 2 | 36.0 ± 1.4 | 41.0 ± 1.4 | 51.0 ± 1.4 | 0.0300 ± 0.0141 | 3.0 ± 1.4 |"
    assert lines[4].startswith("| `byol` | 0/2 (1 diverged) | - |")


def test_fill_markers_replaces_only_between_markers(tmp_path):
    page = tmp_path / "results.md"
    page.write_text("# Results\nverdict A\n<!-- results:a -->\nold\n<!-- /results:a -->\nverdict B\n")
    missing = fill_markers(page, {"a": "| new |", "b": "x"})
    assert missing == ["b"]
    assert page.read_text() == "# Results\nverdict A\n<!-- results:a -->\n| new |\n<!-- /results:a -->\nverdict B\n"


def test_write_results_builds_tables_and_plots_from_the_archive_alone(tmp_path):
    root, docs = tmp_path / "runs", tmp_path / "docs"
    fake_run(root, "simsiam-s0", 40.0, 35.0, 0.02, 60.0)
    docs.mkdir()
    (docs / "results.md").write_text("<!-- results:t -->\n<!-- /results:t -->\n")
    exp = {"t": Experiment("t", "claim", (RunSpec("simsiam", 0),), evals=())}
    assert write_results(root, docs, exp) == []
    page = (docs / "results.md").read_text()
    assert "| `simsiam` | 1 | 35.0 | 40.0 |" in page and "(results/t.png)" in page
    assert (docs / "results" / "t.png").stat().st_size > 0
    (docs / "results.md").write_text("<!-- results:t -->\n<!-- /results:t -->\n")
    write_results(None, docs, exp)  # the machine that trained is gone: the archive is enough
    assert "| `simsiam` | 1 | 35.0 | 40.0 |" in (docs / "results.md").read_text()


def test_write_results_shows_the_archived_tsne_pictures_side_by_side(tmp_path):
    root, docs = tmp_path / "runs", tmp_path / "docs"
    for run_id in ("simsiam-s0", "simsiam-gsg-s0"):
        fake_run(root, run_id, 40.0, 35.0, 0.02, 60.0)
    (root / "simsiam-s0" / "tsne.png").write_bytes(b"png")
    docs.mkdir()
    (docs / "results.md").write_text("<!-- results:t -->\n<!-- /results:t -->\n")
    runs = (RunSpec("simsiam", 0), RunSpec("simsiam-gsg", 0))
    exp = {"t": Experiment("t", "claim", runs, evals=(), tsne=("simsiam-s0", "simsiam-gsg-s0"))}
    write_results(root, docs, exp)
    page = (docs / "results.md").read_text()
    assert "| t-SNE of `simsiam-s0` |\n|---|\n| ![t-SNE of simsiam-s0](results/runs/simsiam-s0/tsne.png) |" in page
    assert "simsiam-gsg-s0/tsne.png" not in page  # not drawn yet: no broken link
    (root / "simsiam-gsg-s0" / "tsne.png").write_bytes(b"png")
    write_results(root, docs, exp)
    assert "| t-SNE of `simsiam-s0` | t-SNE of `simsiam-gsg-s0` |\n|---|---|\n" in (docs / "results.md").read_text()


def test_fill_markers_takes_a_prefix(tmp_path):
    page = tmp_path / "benchmarks.md"
    other = "<!-- results:flops -->\n<!-- /results:flops -->\n"
    page.write_text("<!-- bench:flops -->\n<!-- /bench:flops -->\n" + other)
    assert fill_markers(page, {"flops": "42"}, prefix="bench") == []
    assert page.read_text() == "<!-- bench:flops -->\n42\n<!-- /bench:flops -->\n" + other


def test_a_rerun_is_checked_against_the_archive_within_twice_the_seed_spread(tmp_path):
    archive, rerun = tmp_path / "archive", tmp_path / "rerun"
    fake_run(archive, "simsiam-s0", 40.0, 35.0, 0.02, 60.0, evals=[{"eval": "linear", "top1": 50.0}])
    fake_run(archive, "simsiam-s1", 42.0, 37.0, 0.02, 60.0, evals=[{"eval": "linear", "top1": 52.0}])
    exp = Experiment("t", "claim", (RunSpec("simsiam", 0), RunSpec("simsiam", 1)))
    spread = seed_spread({"t": exp}, archive)
    assert spread == pytest.approx({"knn_top1": 2**0.5, "knn1_top1": 2**0.5, "linear": 2**0.5})  # std of (x, x + 2)

    fake_run(rerun, "simsiam-s0", 41.0, 35.0, 0.02, 60.0, evals=[{"eval": "linear", "top1": 55.0}])
    table, ok = check_reproduction(exp, rerun, archive, spread)
    assert not ok  # linear moved by 5 > 2 x 1.41
    assert "| simsiam-s0 | kNN k=200 weighted | 40.00 | 41.00 | +1.00 | 2.83 | yes |" in table
    assert "| simsiam-s0 | linear | 50.00 | 55.00 | +5.00 | 2.83 | **no** |" in table
    assert "simsiam-s1" not in table  # not re-run: nothing to compare

    _, ok = check_reproduction(exp, tmp_path / "nothing", archive, spread)
    assert not ok
