#!/usr/bin/env bash
# How HER2 agreement grows with training on a GPU: the paper's method (ours) and ASP on the synthetic demo data at
# 256 px (whole tiles), MINUTES of training each, the held-out pairs scored EVALS times (benchmarks/her2_growth.py).
# At batch 1 a step of ours at 512 px took 0.16 s on an H200 (benchmarks/RESULTS.md), so 3 minutes are about
# 1,000-1,500 iterations, where the CPU demo does not translate yet; BS=16 gives more images in the same time.
# Fits one 10-minute command with the defaults (about 2 x 3 min of training, plus step timing and evaluations).
# Figures go to $OUT/her2_growth (or ./gpu_out/her2_growth): growth.csv, growth.png, samples_*.png, summary.json.
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python benchmarks/her2_growth.py --methods ${METHODS:-ours asp} --size ${SIZE:-256} --crop ${CROP:-256} \
  --minutes ${MINUTES:-3} --evals ${EVALS:-10} --bs ${BS:-1} --precision ${PRECISION:-fp32} --out "$OUT/her2_growth" 2>&1 | grep -v Warning
