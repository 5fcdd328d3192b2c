#!/usr/bin/env bash
# Training speed on a GPU vs this machine's CPU, for the demo RVE and problem 6 (RVE bench).
# Run where a GPU is visible (never needed by the tests):
#   bash benchmarks/gpu_check.sh [OUTDIR]      (default benchmarks/results)
# Writes OUTDIR/gpu-demo.{json,md} and OUTDIR/gpu-rve.{json,md}: steps/s on cpu and cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
py=${PYTHON:-.venv/bin/python}
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no GPU visible to torch')"
export OMP_NUM_THREADS=1
"$py" -m benchmarks.training_cost examples/demo-rve-elasticity.toml --steps 300 \
    --variant device=cpu --variant device=cuda --variant device=cuda,compile --out "$out/gpu-demo"
"$py" -m benchmarks.training_cost benchmarks/configs/bench-rve-elasticity.toml --steps 300 \
    --variant device=cpu --variant device=cuda --out "$out/gpu-rve"
