#!/bin/sh
# Every GPU measurement of the 'glide' generator in one call (about 8 minutes on one
# H100/H200-class GPU; the suite skips what is left after its own time budget):
# full-size base + upsampler + noised CLIP with random weights, both guidance modes,
# fp32/fp16/bf16 per batch size, the notebook recipe, torch.compile (default and CUDA
# graphs), then a run at the paper's own steps. Extra arguments go to bench_glide.py,
# e.g. --checkpoint-dir DIR for the released weights, --peak-tflops X.
set -e
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
exec timeout 580 "${PYTHON:-.venv/bin/python}" bench/bench_glide.py --gpu-suite "$@"
