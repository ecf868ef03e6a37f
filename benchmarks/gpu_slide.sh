#!/usr/bin/env bash
# Whole-slide translation on a GPU with the paper's generator (ASP + AMMFI, untrained weights: the arithmetic is
# what is timed): an 8192 x 8192 synthetic slide, half of it tissue, fp32 and bf16. Figures go to $OUT (or ./gpu_out).
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for prec in fp32 bf16; do
  python benchmarks/slide_inference.py --sizes 8192x8192 --tissue 0.5 --slide-generator paper --paper --tiles 16 \
    --batch-size 8 --precision $prec --out "$OUT/slide_$prec.json" 2>&1 | grep -v Warning
done
