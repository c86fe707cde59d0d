"""Few-label evaluation of a pretrained encoder against a random one of the same architecture:
linear probe and fine-tuning with 1 % and 10 % of CIFAR-10's labels (balanced per class, seed 0).

    python benchmarks/few_labels.py runs/curves/speedrun-simsiam-30m data docs/benchmarks/few_labels.json

Prints a Markdown table and writes every result record to the JSON file. Run on an idle machine,
one evaluation at a time (11.5 minutes for the resnet10_cifar width-16 speedrun encoder, fp32:
bf16 autocast is slow on CPUs without native bf16, such as the AVX2-only Zen 3 this ran on).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from siamkit.evaluate import finetune, linear, load_encoder, load_eval_data, random_spec

FRACTIONS = (0.01, 0.1)


def main(run: str, data_root: str, out: str) -> None:
    pretrained = load_encoder(run)
    cfg = pretrained.config.model
    encoders = {"pretrained": pretrained, "random": load_encoder(random_spec(cfg.backbone, cfg.width))}
    data = load_eval_data("cifar10", data_root)
    rows = []
    for fraction in FRACTIONS:
        for kind, evaluate in (("linear", linear), ("finetune", finetune)):
            for name, enc in encoders.items():
                t0 = time.perf_counter()
                result = evaluate(enc, data, label_fraction=fraction, seed=0, precision="fp32")
                rec = {"encoder": name, **result.to_record(), "wall_s": time.perf_counter() - t0}
                rows.append(rec)
                print(f"{kind} {fraction:g} {name}: {result.top1:.2f}% ({rec['wall_s']:.0f} s)", file=sys.stderr)
                about = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
                Path(out).write_text(json.dumps({**about, "rows": rows}, indent=1))
    print("| labels | evaluation | pretrained top-1 % | random top-1 % | train images |")
    print("|---|---|---|---|---|")
    for fraction in FRACTIONS:
        for kind in ("linear", "finetune"):
            r = {x["encoder"]: x for x in rows if x["eval"] == kind and x["label_fraction"] == fraction}
            print(f"| {fraction:g} | {kind} | {r['pretrained']['top1']:.2f} | {r['random']['top1']:.2f} | "
                  f"{r['pretrained']['train_images']} |")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:4])
