#!/usr/bin/env bash
# GPU checks and figures of the training chapter. Figures go to $OUT (or ./gpu_out). SECTIONS picks what runs
# (default: all of "train step bsmax compile inference"):
#  train     mixed precision and channels-last train finite losses (tiny networks, fastai loop);
#  step      training steps of asp and ours at 512x512, batch 1, fp32 and bf16 (+ channels-last): s/iter, images/s,
#            memory, FLOPs and utilisation of the card's peak (benchmarks/train_step.py);
#  bsmax     for asp and ours, fp32 and bf16: the largest batch that fits, predicted from the peak memory at batches 8
#            and 16 (2 and 4, or 1 and 2, on smaller cards; memory grows linearly with the batch) and confirmed by running it (one step smaller on OOM), then
#            timed the same way (BSMAX="asp:bf16 ours:fp32" picks configurations); expandable segments keep the
#            allocator's fragmentation from failing a batch in the timed run that fitted in the search;
#  compile   asp and ours with and without torch.compile, batch 1 and 8, in the same rounds;
#  inference generator inference throughput in megapixels/s (benchmarks/generator_inference.py).
set -uo pipefail
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
SIZE=${SIZE:-512}; ITERS=${ITERS:-5}; SECTIONS=${SECTIONS:-"train step bsmax compile inference"}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
if has train; then
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
fi
T="python benchmarks/train_step.py --size $SIZE --iters $ITERS --rounds 1"
if has step; then
$T --bs 1 --precision fp32 --out "$OUT/step_fp32_bs1.json" --md "$OUT/step_fp32_bs1.md" 2>&1 | grep -v Warning | tail -4
$T --bs 1 --precision bf16 --channels-last --out "$OUT/step_bf16_bs1.json" --md "$OUT/step_bf16_bs1.md" 2>&1 | grep -v Warning | tail -4
fi
if has bsmax; then
for cfg in ${BSMAX:-asp:fp32 asp:bf16 ours:fp32 ours:bf16}; do m=${cfg%:*}; prec=${cfg#*:}
  BS=$(python - "$m" "$prec" "$SIZE" <<'PY' 2>>"$OUT/bsmax_search.txt" | tail -1
import sys, gc, torch, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, 'benchmarks')
from train_step import He2ihcStep
method, prec, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
total = torch.cuda.get_device_properties(0).total_memory
def peak(bs):
    "Peak memory of two steps at batch `bs`, or None if it runs out of memory."
    s = None
    try:
        s = He2ihcStep(method, size, bs, 'cuda', prec, channels_last=prec == 'bf16'); s(); s(); torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    except torch.OutOfMemoryError: return None
    except RuntimeError as e:   # a single tensor past 2**31 elements: some kernels (reflection padding) refuse it
        if '32-bit index' in str(e): return None
        raise
    finally:
        s = None; gc.collect(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
for lo in (8, 2, 1):   # two batches that fit (smaller cards: smaller pairs)
    m_lo, m_hi = peak(lo), peak(2 * lo)
    if m_lo and m_hi: break
else: sys.exit(f"{method} {prec}: batch 1 and 2 do not both fit at {size}x{size}")
per = (m_hi - m_lo) / lo; base = m_lo - lo * per
bs = int((total - base) / per)
print(f"{method} {prec}: {m_lo / 2**30:.1f} GiB at {lo}, {m_hi / 2**30:.1f} at {2 * lo}, {per / 2**30:.2f} per image: predicted {bs} of {total / 2**30:.0f} GiB", file=sys.stderr)
while bs > 2 * lo:
    m = peak(bs)
    print(f"  batch {bs}: " + (f"fits, {m / 2**30:.1f} GiB" if m else "does not fit (out of memory, or a tensor too large to index)"), file=sys.stderr)
    if m: break
    bs -= max(1, bs // 16)
print(max(bs, 2 * lo))
PY
)
  echo "largest batch that fits ($m, $prec, ${SIZE}x${SIZE}): $BS"
  CL=$([ "$prec" = bf16 ] && echo --channels-last)
  $T --methods $m --bs "$BS" --precision $prec $CL --iters 2 --warmup 1 --out "$OUT/step_${m}_${prec}_bs${BS}.json" --md "$OUT/step_${m}_${prec}_bsmax.md" 2>&1 | grep -v Warning | tail -1
done
cat "$OUT/bsmax_search.txt"
fi
if has compile; then
for bs in 1 8; do
$T --methods asp asp@compile ours ours@compile --bs $bs --precision fp32 --warmup 3 --rounds 2 --out "$OUT/compile_fp32_bs$bs.json" --md "$OUT/compile_fp32_bs$bs.md" 2>&1 | grep -v Warning | tail -6
done
fi
if has inference; then
python benchmarks/generator_inference.py --out "$OUT/inference.json" 2>&1 | grep -v Warning | tail -8
fi
