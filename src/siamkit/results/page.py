"""The results page of the papers' experiments: ``siamkit experiment --report``.

Each finished (or partial) run under the experiments root is archived, as its small records only
(``metrics.jsonl``, ``evals.jsonl``, ``config.yaml``, ``run.json``; no checkpoint), under
``docs/results/runs/RUN_ID``. The tables and plots are built from that archive, so the page can be
rebuilt, and checked, from the repository alone even when the machine that trained the runs is
gone. Tables go into ``docs/results.md`` between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` markers; everything outside the markers (protocol, verdicts) is
hand-written and left as it is.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from siamkit.experiments import DIVERGED, TSNE, Experiment, RunSpec, archive_run
from siamkit.results.report import fmt
from siamkit.runs import RunRecord, load_run, read_jsonl


def archive_runs(root: Path, archive: Path) -> list[str]:
    """Copy the small records of every run folder under ``root`` (and of the random encoder's, which
    has evaluations only) into ``archive``; returns the folder names."""
    return [run.name for run in sorted(p for p in Path(root).iterdir() if p.is_dir()) if archive_run(run, archive)]


@dataclass
class RunResult:
    """One run of an experiment: its spec and its records, whether it finished or diverged."""

    spec: RunSpec
    record: RunRecord

    @property
    def diverged(self) -> bool:
        return (self.record.path / DIVERGED).exists()

    @property
    def done(self) -> bool:
        rows = self.record.trained
        return bool(rows) and rows[-1]["epoch"] >= self.record.config["train"]["epochs"]

    def eval(self, kind: str) -> float | None:
        results = [e["top1"] for e in self.record.evals if e["eval"] == kind and "top1" in e]
        return results[-1] if results else None


def mean_spread(values: list[float], digits: int = 1) -> str:
    """``mean ± sample std (n)``; a single value is shown alone, none as ``-``."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _load(exp: Experiment, archive: Path) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for spec in exp.runs:
        path = archive / spec.run_id
        if (path / "metrics.jsonl").exists():
            groups.setdefault(spec.group, []).append(RunResult(spec, load_run(path)))
        else:
            groups.setdefault(spec.group, [])
    return groups


def experiment_table(exp: Experiment, archive: Path, random_evals: dict[str, float]) -> str:
    """One row per method (mean ± std over finished seeds), the randomly initialised encoder first."""
    evals = [e for e in ("linear", "transfer") if e in exp.evals]
    head = ["encoder", "seeds", "kNN k=1", "kNN k=200 weighted", *[_EVAL_NAMES[e] for e in evals]]
    head += ["collapse std (end)", "train min / run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = _load(exp, archive)
    inits = [f for runs in groups.values() for f in runs if f.record.init("knn_top1") is not None]
    if inits:  # epoch 0 of every run is the kNN monitor on that run's random initialisation
        row = ["random init", str(len(inits))]
        row += [mean_spread([f.record.init(k) for f in inits]) for k in ("knn1_top1", "knn_top1")]
        row += [fmt(random_evals.get(e)) for e in evals] + ["-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    for name, runs in groups.items():
        done = [f for f in runs if f.done]
        planned = sum(1 for s in exp.runs if s.group == name)
        seeds = f"{len(done)}/{planned}" if len(done) < planned else str(planned)
        if diverged := sum(f.diverged for f in runs):
            seeds += f" ({diverged} diverged)"
        row = [f"`{name}`", seeds]
        row += [mean_spread([f.record.final(k) for f in done]) for k in ("knn1_top1", "knn_top1")]
        row += [mean_spread([v for f in done if (v := f.eval(e)) is not None]) for e in evals]
        row += [mean_spread([f.record.final("z_std") for f in done], 4)]
        row += [mean_spread([f.record.train_seconds / 60 for f in done])]
        lines.append("| " + " | ".join(row) + " |")
    machines = Counter(f.record.info.get("machine", "not recorded") for runs in groups.values() for f in runs if f.done)
    if machines:  # run times compare only on one machine
        lines.append("\nTrained on: " + ", ".join(f"{m} ({n} runs)" for m, n in sorted(machines.items())) + ".")
    return "\n".join(lines)


_EVAL_NAMES = {"linear": "linear probe", "transfer": "transfer (Imagenette-32)"}


def random_baseline(archive: Path) -> dict[str, float]:
    """The random encoder's evaluation results, from the archived ``random-*`` folder."""
    out: dict[str, float] = {}
    for folder in sorted(archive.glob("random-*")):
        for e in read_jsonl(folder / "evals.jsonl"):
            if "top1" in e:
                out[e["eval"]] = e["top1"]
    return out


def experiment_plot(exp: Experiment, archive: Path, path: Path) -> bool:
    """Weighted kNN, 1-NN and collapse std per epoch, one line per method (mean over seeds, band = min-max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    groups = {k: v for k, v in _load(exp, archive).items() if v}
    if not groups:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    panels = (
        ("knn_top1", "weighted kNN (k=200) top-1 (%)"),
        ("knn1_top1", "kNN k=1 top-1 (%)"),
        ("z_std", "collapse std of z"),
    )
    for (key, ylabel), ax in zip(panels, axes, strict=True):
        for name, runs in groups.items():
            curves = [dict(zip(*f.record.curve(key), strict=True)) for f in runs]
            epochs = sorted(set.intersection(*(set(c) for c in curves)))
            if not epochs:
                continue
            mean = [statistics.mean(c[e] for c in curves) for e in epochs]
            (line,) = ax.plot(epochs, mean, marker="o", markersize=3, label=f"{name} (n={len(runs)})")
            if len(runs) > 1:
                lo = [min(c[e] for c in curves) for e in epochs]
                hi = [max(c[e] for c in curves) for e in epochs]
                ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, not 1.5
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    d = next(iter(groups.values()))[0].record.config["model"].get("proj_dim", 2048)
    axes[2].axhline(d**-0.5, color="gray", linestyle=":", linewidth=1, label="healthy 1/sqrt(D)")
    axes[0].set_title(f"{exp.name}: weighted kNN per epoch (0 = random init)")
    axes[1].set_title("1-NN per epoch")
    axes[2].set_title("collapse monitor (0 = collapsed)")
    axes[2].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def fill_markers(page: Path, blocks: dict[str, str], prefix: str = "results") -> list[str]:
    """Replace the text between ``<!-- PREFIX:NAME -->`` and ``<!-- /PREFIX:NAME -->`` in ``page``
    for each NAME in ``blocks``; returns the names whose markers the page lacks (left unwritten)."""
    text = page.read_text()
    missing = []
    for name, body in blocks.items():
        tag = re.escape(f"{prefix}:{name}")
        pattern = re.compile(rf"(<!-- {tag} -->\n).*?(<!-- /{tag} -->)", re.S)
        if not pattern.search(text):
            missing.append(name)
            continue
        text = pattern.sub(lambda m, body=body: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)
    page.write_text(text)
    return missing


def tsne_figures(exp: Experiment, archive: Path, link: str = "results/runs") -> str:
    """The archived t-SNE pictures of ``exp.tsne``'s runs side by side, as a markdown table whose
    image links start with ``link`` (the archive as the page sees it); empty when none is drawn."""
    runs = [r for r in exp.tsne if (archive / r / TSNE).exists()]
    if not runs:
        return ""
    head = "| " + " | ".join(f"t-SNE of `{r}`" for r in runs) + " |"
    cells = "| " + " | ".join(f"![t-SNE of {r}]({link}/{r}/{TSNE})" for r in runs) + " |"
    return "\n\n" + "\n".join([head, "|" + "---|" * len(runs), cells])


def write_results(root: Path | None, docs: Path, experiments: dict[str, Experiment]) -> list[str]:
    """Archive ``root``'s runs (if given), then rebuild every experiment's table and plot into
    ``docs/results.md`` and ``docs/results/NAME.png``; returns the experiments with no marker."""
    archive = docs / "results" / "runs"
    archive.mkdir(parents=True, exist_ok=True)
    if root is not None and Path(root).exists():
        archive_runs(Path(root), archive)
    random_evals = random_baseline(archive)
    blocks = {}
    for exp in experiments.values():
        body = experiment_table(exp, archive, random_evals)
        png = docs / "results" / f"{exp.name}.png"
        if experiment_plot(exp, archive, png):
            body += f"\n\n![{exp.name}: kNN, 1-NN and collapse std per epoch](results/{png.name})"
        body += tsne_figures(exp, archive)
        blocks[exp.name] = body
    return fill_markers(docs / "results.md", blocks)


# ---- reproduction check: a re-run against the archive ------------------------------------------------

_CHECKED = (
    ("knn1_top1", "kNN k=1"),
    ("knn_top1", "kNN k=200 weighted"),
    ("linear", "linear"),
    ("transfer", "transfer"),
)


def _value(f: RunResult, key: str) -> float | None:
    return f.eval(key) if key in ("linear", "transfer") else f.record.final(key)


def seed_spread(experiments: dict[str, Experiment], archive: Path) -> dict[str, float]:
    """Per metric, the median over multi-seed groups of the std over seeds: the run-to-run spread
    the results page states, and the yardstick a re-run is checked against."""
    stds: dict[str, list[float]] = {key: [] for key, _ in _CHECKED}
    seen = set()
    for exp in experiments.values():
        for group, runs in _load(exp, archive).items():
            done = [f for f in runs if f.done]
            if group in seen or len(done) < 2:
                continue
            seen.add(group)
            for key, _ in _CHECKED:
                values = [v for f in done if (v := _value(f, key)) is not None]
                if len(values) >= 2:
                    stds[key].append(statistics.stdev(values))
    return {key: statistics.median(v) for key, v in stds.items() if v}


def check_reproduction(exp: Experiment, rerun: Path, archive: Path, spread: dict[str, float]) -> tuple[str, bool]:
    """Compare each run of ``exp`` finished under ``rerun`` with the archived run of the same id:
    a markdown table, and whether every difference is within 2x the seed spread."""
    lines = ["| run | metric | archived | re-run | difference | 2 x seed spread | within |", "|" + "---|" * 7]
    ok, compared = True, 0
    for spec in exp.runs:
        new_path, old_path = Path(rerun) / spec.run_id, archive / spec.run_id
        if not (new_path / "metrics.jsonl").exists() or not (old_path / "metrics.jsonl").exists():
            continue
        new, old = RunResult(spec, load_run(new_path)), RunResult(spec, load_run(old_path))
        if not (new.done and old.done):
            continue
        for key, name in _CHECKED:
            a, b = _value(old, key), _value(new, key)
            if a is None or b is None or key not in spread:
                continue
            within = abs(b - a) <= 2 * spread[key]
            ok &= within
            compared += 1
            row = [spec.run_id, name, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}", f"{2 * spread[key]:.2f}"]
            lines.append("| " + " | ".join([*row, "yes" if within else "**no**"]) + " |")
    if not compared:
        return f"no finished run of {exp.name} under {rerun} has an archived counterpart in {archive}", False
    return "\n".join(lines), ok
