#!/usr/bin/env bash
# GPU checks of the training chapter: mixed precision and channels-last train finite losses,
# and seconds per iteration of the asp and ours presets. Figures go to $OUT (or ./gpu_out).
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
python - <<'PY' 2>&1 | tee "$OUT/cuda_training.txt"
import math, tempfile, warnings, torch
from pathlib import Path
from he2ihc.synthetic import make_demo_dataset
from he2ihc.data import paired_dls
from he2ihc.magnification import MultiMagViews
from he2ihc.train import stain_learner
print(torch.cuda.get_device_name(0), torch.__version__)
demo = make_demo_dataset(Path(tempfile.mkdtemp())/'demo', n_train=8, n_val=2, size=64, seed=0, progress=False)
small = dict(ngf=8, ndf=8, g_blocks=5, num_downs=5, d_layers=2, num_patches=32, crop_size=48)
for prec, cl in (('bf16', False), ('fp16', False), ('bf16', True), ('fp32', False)):
    dls = paired_dls(demo, crop_size=48, bs=2, device='cuda', multimag=MultiMagViews(48))
    learn = stain_learner(dls, 'ours', precision=prec, channels_last=cl, seed=0, **small)
    with learn.no_bar(), learn.no_logging(): learn.fit_flat_lin(1, 1)
    ok = all(math.isfinite(v) for h in learn.stain_trainer.history for v in h.values())
    vals = dict(zip(learn.recorder.metric_names[1:], learn.recorder.values[-1]))
    print(f"{prec} channels_last={cl}: finite={ok} device={next(learn.model.parameters()).device} psnr={vals['psnr']:.2f} ssim={vals['ssim']:.3f}"
          + (f" scale={learn.stain_trainer.scalers['G'].get_scale()}" if prec == 'fp16' else ''))
    assert ok
PY
for prec in fp32 bf16; do
  for crop in 256 512; do
    python benchmarks/train_step.py --methods asp ours --crop $crop --iters 8 --precision $prec --out "$OUT/train_step_${prec}_${crop}.json" 2>&1 | grep -v Warning | tail -3
  done
done
python benchmarks/train_step.py --methods asp ours --crop 512 --iters 8 --precision bf16 --channels-last --out "$OUT/train_step_bf16_512_cl.json" 2>&1 | grep -v Warning | tail -3
