"""``siamkit report``: a Markdown table and plots comparing runs, from their files alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siamkit.runs import RunRecord, load_run


def fmt(v: float | None, digits: int = 1) -> str:
    """A number for a table: ``digits`` decimals, ``-`` when missing."""
    return "-" if v is None else f"{v:.{digits}f}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def eval_label(e: dict[str, Any]) -> str:
    """A column name for an evaluation result: what was measured, and on which dataset."""
    if e["eval"] == "knn":
        kind = f"kNN k={e['k']}" + (" weighted" if e.get("weighted") else "")
    else:
        kind = e["eval"] + (" (aug)" if e.get("augment") else "")
    return f"{kind}, {e['dataset']}"


def table(runs: list[RunRecord]) -> str:
    """One row per run; evaluation columns for every kind of result found in any run's evals."""
    eval_keys = sorted({eval_label(e) for r in runs for e in r.evals if "top1" in e})
    head = ["run", "method", "backbone", "epochs", "train time", "kNN at init", "final kNN", "best kNN (epoch)"]
    head += ["final 1-NN", "z_std at end", *eval_keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        knn = list(zip(*r.curve("knn_top1"), strict=True))
        knn = [e for e in knn if e[0] > 0]
        best = max(knn, key=lambda e: e[1]) if knn else None
        last = r.trained[-1] if r.trained else {}
        planned = r.config["train"]["epochs"]
        evals = {}
        for e in r.evals:  # the latest result of each kind wins
            if "top1" in e:
                evals[eval_label(e)] = e["top1"]
        row = [
            r.path.name,
            r.info.get("method", r.config["method"]["name"]),
            r.config["model"]["backbone"] + (f" w{r.config['model']['width']}" if r.config["model"]["width"] else ""),
            f"{last.get('epoch', 0)}/{planned}",
            _minutes(r.train_seconds),
            fmt(r.init("knn_top1")),
            fmt(knn[-1][1] if knn else None),
            f"{best[1]:.1f} ({best[0]})" if best else "-",
            fmt(last.get("knn1_top1")),
            fmt(last.get("z_std"), 4),
        ] + [fmt(evals.get(k)) for k in eval_keys]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _plot(runs: list[RunRecord], key: str, ylabel: str, title: str, path: Path, hline: float | None = None) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(r.label, *r.curve(key)) for r in runs]
    curves = [c for c in curves if c[1]]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for label, x, y in curves:
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if hline is not None:  # a reference level, e.g. the healthy collapse std
        ax.axhline(hline, color="gray", linestyle=":", linewidth=1)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write ``out/report.md`` and the plots ``knn.png``, ``collapse.png``, ``loss.png``."""
    runs = [load_run(p) for p in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# siamkit report", "", table(runs), ""]
    d = runs[0].config["model"].get("proj_dim", 2048)
    plots = [
        ("knn_top1", "weighted kNN top-1 (%)", "kNN accuracy per epoch (GSG fig. 4)", "knn.png", None),
        (
            "z_std",
            "std of L2-normalised z",
            f"Collapse monitor (healthy ~ 1/sqrt(D) = {d**-0.5:.3f}, collapsed 0)",
            "collapse.png",
            d**-0.5,
        ),
        ("loss", "training loss", "Loss per epoch", "loss.png", None),
    ]
    for key, ylabel, title, name, hline in plots:
        if _plot(runs, key, ylabel, title, out / name, hline):
            parts += [f"![{title}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path
