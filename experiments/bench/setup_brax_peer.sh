#!/usr/bin/env bash
# The peer environment for side-by-side Brax PPO runs: Brax's trainers need an older jax than
# robojax uses, so they live in their own venv (never a robojax dependency).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${BRAX_PEER_VENV:-$here/.brax-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "jax[cpu]==0.7.2" "jaxlib==0.7.2" "brax==0.14.2" "playground==0.2.0"
echo "$venv"
