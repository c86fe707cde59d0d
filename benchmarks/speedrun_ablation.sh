#!/usr/bin/env bash
# The speedrun ablation (docs/speedrun.md): SimSiam on CIFAR-10 (exported to data/), 5 minutes of
# training each, one run at a time on an otherwise idle machine. The kNN monitor uses a fixed
# 10,000-image bank (k=200, T=0.1, the full 10k test split). Then: python benchmarks/speedrun_table.py $OUT
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/speedrun-ablation}
mkdir -p "$OUT"
B="--method simsiam --dataset cifar10 --data-root data --time-budget 5m --epochs 1000 --precision fp32 --device cpu --quiet --set train.channels_last=true --set train.knn_train_subset=10000"
run() { name=$1; shift; rm -rf $OUT/$name; .venv/bin/siamkit pretrain --preset cpu $B --out $OUT/$name "$@" > $OUT/$name.log 2>&1; echo "$name rc=$? $(tail -1 $OUT/$name.log)"; }
run A-cpu-fp32
run B-width16 --set model.width=16
run C-width16-cosine --set model.width=16 --set optim.schedule=cosine
run D-width16-cosine-16px --set model.width=16 --set optim.schedule=cosine --set data.image_size=16
run E-width16-seed1 --set model.width=16 --seed 1
run F-width16-batch128 --set model.width=16 --batch-size 128
run G-width16-lr0.1 --set model.width=16 --lr 0.1
run H-width16-batch128-lr0.1 --set model.width=16 --batch-size 128 --lr 0.1
