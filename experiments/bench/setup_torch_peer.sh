#!/usr/bin/env bash
# The PyTorch reference for policy_latency.py, in its own venv (kept out of robojax's deps).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${TORCH_PEER_VENV:-$HERE/.torch-venv}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "torch==2.13.0" numpy
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'ready in $VENV')"
