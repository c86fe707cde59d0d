"""t-SNE of frozen test-set features coloured by class (GSG appendix E)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor


def tsne_png(features: Tensor, labels: Tensor, classes: list[str], path: Path, title: str, seed: int = 0) -> Path:
    """Embed ``features`` in 2-d with scikit-learn's t-SNE (PCA init, perplexity 30) and save a
    scatter plot with one colour per class and a legend of the class names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    xy = TSNE(n_components=2, init="pca", perplexity=30, random_state=seed).fit_transform(features.numpy())
    y = labels.numpy()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c, name in enumerate(classes):
        pts = xy[y == c]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=4 if len(y) > 2000 else 10,
            color=cmap(c % cmap.N),
            label=name,
            alpha=0.8,
            linewidths=0,
        )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
