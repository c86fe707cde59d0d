#!/usr/bin/env bash
# Creates .extras-venv: siamkit with its timm, torchvision and safetensors extras, for
# `make test-extras` (tests/extras). Never downloads a multi-GB CUDA build of torch:
#   aarch64: PyPI's torch 2.9.1 + torchvision 0.24.1 are CPU builds.
#   x86_64:  PyPI has no CPU torchvision. With the PyTorch CPU index reachable
#            (https://download.pytorch.org/whl/cpu, or $EXTRAS_TORCH_INDEX), torch 2.13.0 +
#            torchvision 0.28.0 CPU builds come from it. Otherwise torch 2.14.1 + torchvision 0.29.1
#            (a CUDA build, 5.5 GB installed, runs on the CPU) are used only when every wheel of them
#            lies on local disk (checked with pip's install report); else this script stops, exit 3.
# EXTRAS_VENV: where (default .extras-venv). EXTRAS_ALLOW_DOWNLOAD=1 lifts the download check.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${EXTRAS_VENV:-.extras-venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.installed"
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt "$0" ]; then
    echo "$VENV is ready"; exit 0
fi
INDEX=${EXTRAS_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
PINS="$(mktemp)"
trap 'rm -f "$PINS" "$PINS.json"' EXIT
INDEX_ARGS=()
if [ "$(uname -m)" = "aarch64" ]; then
    printf 'torch==2.9.1\ntorchvision==0.24.1\n' > "$PINS"; ROUTE="PyPI CPU builds (aarch64)"
elif curl -sfI -m 5 "$INDEX/torch/" > /dev/null 2>&1; then
    printf 'torch==2.13.0+cpu\ntorchvision==0.28.0+cpu\n' > "$PINS"; ROUTE="CPU builds from $INDEX"
    INDEX_ARGS=(--extra-index-url "$INDEX")
else
    printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$PINS"; ROUTE="torch 2.14.1 CUDA build from local disk (runs on the CPU)"
fi
printf 'timm==1.0.31\nsafetensors==0.8.0\n' >> "$PINS"
echo "extras venv: $ROUTE"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
if [ "${EXTRAS_ALLOW_DOWNLOAD:-0}" != "1" ]; then
    "$VENV/bin/pip" install -q --dry-run --ignore-installed --report "$PINS.json" -c "$PINS" "${INDEX_ARGS[@]}" \
        torch torchvision timm safetensors 2> /dev/null
    "$VENV/bin/python" - "$PINS.json" "$INDEX" <<'PYCHECK' || { rm -rf "$VENV"; exit 3; }
import json, sys
report, index = json.load(open(sys.argv[1])), sys.argv[2]
HEAVY = ("torch", "torchvision", "triton", "nvidia-cudnn", "nvidia-cublas", "nvidia-nccl", "nvidia-cusparse",
         "nvidia-cufft", "nvidia-cusolver", "nvidia-nvshmem")  # the wheels of 100 MB and more
big = [i["metadata"]["name"] for i in report["install"]
       if i["metadata"]["name"].startswith(HEAVY) and not i["download_info"]["url"].startswith(("file:", index))]
if big:
    print(f"extras venv: {', '.join(big)} would be downloaded (a CUDA build of several GB); not installing. "
          "Make the PyTorch CPU index reachable (EXTRAS_TORCH_INDEX) or set EXTRAS_ALLOW_DOWNLOAD=1.")
    sys.exit(1)
PYCHECK
fi
"$VENV/bin/pip" install -q -c "$PINS" "${INDEX_ARGS[@]}" torch torchvision
"$VENV/bin/pip" install -q -c "$PINS" "${INDEX_ARGS[@]}" -e '.[timm,torchvision,safetensors]' pytest
"$VENV/bin/python" -c "import torch, torchvision, timm, safetensors; print('extras venv: torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)"
touch "$STAMP"
