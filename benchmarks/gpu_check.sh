#!/usr/bin/env bash
# GPU checks and figures of the training chapter (one run, about 4 minutes on an H100). Figures go to $OUT (or ./gpu_out):
#  1. mixed precision and channels-last train finite losses (tiny networks, fastai loop);
#  2. training steps of asp and ours at 512x512, batch 1, fp32 and bf16 (+ channels-last): s/iter, images/s, memory,
#     FLOPs and utilisation of the card's peak (benchmarks/train_step.py);
#  3. the largest batch that fits (searched over a few sizes, OOM caught), timed the same way;
#  4. generator inference throughput in megapixels/s (benchmarks/generator_inference.py).
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
SIZE=${SIZE:-512}; BATCHES=${BATCHES:-"4 8 16"}; ITERS=${ITERS:-5}
python - <<'PY' 2>&1 | grep -v Warning | tee "$OUT/cuda_training.txt"
import math, tempfile, warnings, torch
warnings.simplefilter('ignore')
from pathlib import Path
from he2ihc.synthetic import make_demo_dataset
from he2ihc.data import paired_dls
from he2ihc.magnification import MultiMagViews
from he2ihc.train import stain_learner
print(torch.cuda.get_device_name(0), torch.__version__)
demo = make_demo_dataset(Path(tempfile.mkdtemp())/'demo', n_train=8, n_val=2, size=64, seed=0, progress=False)
small = dict(ngf=8, ndf=8, g_blocks=5, num_downs=5, d_layers=2, num_patches=32, crop_size=48)
for prec, cl, nc in (('bf16', False, 'step'), ('fp16', False, 'step'), ('bf16', True, 'epoch'), ('fp32', False, 'step')):
    dls = paired_dls(demo, crop_size=48, bs=2, device='cuda', multimag=MultiMagViews(48))
    learn = stain_learner(dls, 'ours', precision=prec, channels_last=cl, nan_check=nc, seed=0, **small)
    with learn.no_bar(), learn.no_logging(): learn.fit_flat_lin(1, 1)
    ok = all(math.isfinite(v) for h in learn.stain_trainer.history for v in h.values())
    vals = dict(zip(learn.recorder.metric_names[1:], learn.recorder.values[-1]))
    print(f"{prec} channels_last={cl} nan_check={nc}: finite={ok} psnr={vals['psnr']:.2f} ssim={vals['ssim']:.3f}")
    assert ok
PY
T="python benchmarks/train_step.py --size $SIZE --iters $ITERS --rounds 1"
$T --bs 1 --precision fp32 --out "$OUT/step_fp32_bs1.json" --md "$OUT/step_fp32_bs1.md" 2>&1 | grep -v Warning | tail -4
$T --bs 1 --precision bf16 --channels-last --out "$OUT/step_bf16_bs1.json" --md "$OUT/step_bf16_bs1.md" 2>&1 | grep -v Warning | tail -4
for prec in bf16 fp32; do
  BS=$(python - "$prec" $BATCHES <<'PY' 2>/dev/null | tail -1
import sys, gc, torch, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, 'benchmarks')
from train_step import He2ihcStep
prec, best = sys.argv[1], 1
for bs in map(int, sys.argv[2:]):
    try:
        s = He2ihcStep('ours', int(__import__('os').environ.get('SIZE', 512)), bs, 'cuda', prec, channels_last=prec == 'bf16'); s(); s(); torch.cuda.synchronize()
        best = bs; print(f"batch {bs}: fits, {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", file=sys.stderr)
    except torch.OutOfMemoryError: print(f"batch {bs}: out of memory", file=sys.stderr); break
    finally:
        s = None; gc.collect(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
print(best)
PY
)
  echo "largest batch that fits ($prec, ours, ${SIZE}x${SIZE}): $BS"
  CL=$([ "$prec" = bf16 ] && echo --channels-last)
  $T --bs "$BS" --precision $prec $CL --iters 2 --warmup 1 --out "$OUT/step_${prec}_bs${BS}.json" --md "$OUT/step_${prec}_bsmax.md" 2>&1 | grep -v Warning | tail -4
done
python benchmarks/generator_inference.py --out "$OUT/inference.json" 2>&1 | grep -v Warning | tail -8
