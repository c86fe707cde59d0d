"""Reports built from run folders alone: ``siamkit report`` and the results page of the papers'
experiments (``siamkit experiment --report`` and ``--check``)."""

from siamkit.results.page import (
    archive_runs,
    check_reproduction,
    experiment_plot,
    experiment_table,
    fill_markers,
    mean_spread,
    random_baseline,
    seed_spread,
    tsne_figures,
    write_results,
)
from siamkit.results.report import eval_label, fmt, table, write_report

__all__ = [
    "archive_runs",
    "check_reproduction",
    "eval_label",
    "experiment_plot",
    "experiment_table",
    "fill_markers",
    "fmt",
    "mean_spread",
    "random_baseline",
    "seed_spread",
    "table",
    "tsne_figures",
    "write_report",
    "write_results",
]
