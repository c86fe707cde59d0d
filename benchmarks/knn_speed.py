"""kNN classification speed: siamkit's chunked matmul + top-k against scikit-learn's
KNeighborsClassifier on the same L2-normalised features, same k, same (cosine) metric; and the
seconds of siamkit's linear probe (90 epochs, the CIFAR protocol) on the same features.

    python benchmarks/knn_speed.py [--checkpoint CKPT --data-root DIR] [--repeats 3]

With a checkpoint and a CIFAR-10 folder the features are the encoder's (50,000 train x 10,000
test); otherwise random unit vectors of the same shape. Each side runs once to warm up, then
``--repeats`` times, interleaved with the other; the medians and their ratio are printed as a
Markdown table, together with the share of test images on which both predict the same class.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from _timing import interleaved, median_time

from siamkit.evaluate.knn import knn_predict
from siamkit.evaluate.linear import linear_probe


def load_features(args) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    if args.checkpoint:
        from siamkit.config import build_config
        from siamkit.data import load_datasets
        from siamkit.evaluate import extract_features
        from siamkit.evaluate.encoders import load_encoder

        enc = load_encoder(args.checkpoint)
        train, test = load_datasets(build_config({"data.dataset": "cifar10", "data.data_root": args.data_root}).data)
        f_train, y_train = extract_features(enc.backbone, train, enc.recipe or "cifar", 32, precision="bf16")
        f_test, y_test = extract_features(enc.backbone, test, enc.recipe or "cifar", 32, precision="bf16")
        return f_train, y_train, f_test, y_test, f"CIFAR-10 features of {args.checkpoint}"
    g = torch.Generator().manual_seed(0)
    f_train = F.normalize(torch.randn(50_000, args.dim, generator=g), dim=1)
    f_test = F.normalize(torch.randn(10_000, args.dim, generator=g), dim=1)
    y_train, y_test = torch.randint(0, 10, (50_000,), generator=g), torch.randint(0, 10, (10_000,), generator=g)
    return f_train, y_train, f_test, y_test, f"random unit vectors, dim {args.dim}"


def main() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--data-root")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    f_train, y_train, f_test, y_test, what = load_features(args)
    x_train, x_test, y_np = f_train.numpy(), f_test.numpy(), y_train.numpy()

    print(
        f"features: {what}; {len(f_train)} x {len(f_test)}, dim {f_train.shape[1]}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print("| vote | siamkit (s) | scikit-learn (s) | speed-up | same predictions |")
    print("|---|---|---|---|---|")
    for k, temperature in ((1, None), (200, 0.1)):
        weights = "uniform" if temperature is None else (lambda d, t=temperature: np.exp((1.0 - d) / t))
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights, n_jobs=-1)
        out = {}

        def ours_fn(k=k, t=temperature, out=out):
            out["ours"] = knn_predict(f_train, y_train, f_test, k, t, 10)

        def theirs_fn(clf=clf, out=out):
            out["theirs"] = clf.fit(x_train, y_np).predict(x_test)

        sec = interleaved({"ours": ours_fn, "theirs": theirs_fn}, args.repeats)
        ours_s, theirs_s = sec["ours"], sec["theirs"]
        agree = 100.0 * float((out["ours"].numpy() == out["theirs"]).mean())
        vote = "majority, k = 1" if temperature is None else f"weighted, k = {k}, T = {temperature}"
        print(f"| {vote} | {ours_s:.2f} | {theirs_s:.2f} | {theirs_s / ours_s:.1f}x | {agree:.2f} % |")

    def probe():
        linear_probe(f_train, y_train, f_test, y_test)

    probe_s = median_time(probe, 1)
    print(
        f"\nLinear probe, 90 epochs of SGD on the {len(f_train)} training features (batch 256, lr 30, cosine): "
        f"{probe_s:.1f} s (one run after a warm-up)"
    )


if __name__ == "__main__":
    main()
