#!/usr/bin/env bash
# Whole-slide translation on a GPU machine: the paper's generator (ASP + AMMFI, untrained weights: the arithmetic is
# what is timed) on one synthetic slide, half of it tissue. Measured, each in a fresh process:
#   1. the generator alone on 512 px windows, batch 8: fp32, bf16 autocast, torch.compile in bf16;
#   2. the whole translate_slide in fp32 and bf16 at 1, 4, 8 and 16 CPU threads (reading, pyramid, JPEG), then
#      torch.compile + bf16 at the largest number of threads (compiling takes a minute per process);
#   3. translate_slides over 4 copies of the slide (a local Dask cluster: one worker per GPU) in fp32 and bf16,
#      at the largest number of threads.
# Every output of a setting is checked to be the same file as with the first number of threads.
# Figures go to $OUT (or ./gpu_out) as JSON, and to the terminal as tables.
#
# Sized for a few minutes on an H100/H200. To try it on a CPU first, small:
#   SIZE=1024x1024 GENERATOR=tiny THREADS="1 2" SLIDES=2 WINDOWS=8 bash benchmarks/gpu_slide.sh
set -euo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
SIZE=${SIZE:-8192x8192}; GENERATOR=${GENERATOR:-paper}; THREADS=${THREADS:-"1 4 8 16"}; SLIDES=${SLIDES:-4}; WINDOWS=${WINDOWS:-64}
MOST=${THREADS##* }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU: running on the CPU"
here=$(dirname "$0")
python "$here/slide_threads.py" --sizes "$SIZE" --tissue 0.5 --generator "$GENERATOR" --precision fp32 bf16 compile-bf16 \
  --threads $MOST --rounds 0 --alone --alone-windows "$WINDOWS" --out "$OUT/alone.json" 2>&1 | grep -v -i warning
python "$here/slide_threads.py" --sizes "$SIZE" --tissue 0.5 --generator "$GENERATOR" --precision fp32 bf16 \
  --threads $THREADS --rounds 1 --slides "$SLIDES" --out "$OUT/slides.json" 2>&1 | grep -v -i warning
python "$here/slide_threads.py" --sizes "$SIZE" --tissue 0.5 --generator "$GENERATOR" --precision compile-bf16 \
  --threads $MOST --rounds 1 --out "$OUT/compiled.json" 2>&1 | grep -v -i warning
