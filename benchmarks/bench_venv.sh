#!/usr/bin/env bash
# Creates .bench-venv: the environment `make bench` runs in. It holds the libraries siamkit is
# compared against (lightly, torchvision.transforms.v2, scikit-learn) beside siamkit itself, on
# one torch, so both sides of every comparison run in one process on the same kernels.
#
# torch 2.14.1 + torchvision 0.29.1 (torchvision from PyPI does not import beside the 2.13.0 CPU
# build that .venv uses). On this machine pip finds both on local disk for Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-.bench-venv}
PY=${PYTHON:-python3.11}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import lightly, torchvision, siamkit" 2>/dev/null; then
    echo "$VENV is ready"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
cat > "$VENV/constraints.txt" <<'PINS'
torch==2.14.1
torchvision==0.29.1
lightly==1.6.0
PINS
"$VENV/bin/pip" install -q -c "$VENV/constraints.txt" torch torchvision lightly scikit-learn
"$VENV/bin/pip" install -q -c "$VENV/constraints.txt" -e .
"$VENV/bin/python" -c "import torch, torchvision, lightly, siamkit; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'lightly', lightly.__version__)"
