"""Time training iterations: seconds per iteration of each method preset (batch 1, full-size networks).

Usage: python benchmarks/train_step.py [--methods asp ours] [--crop 256] [--iters 6] [--precision fp32] [--out results.json]
Times whole fastai iterations (D step + G step, every loss term) after one warm-up epoch of 2 iterations.
Not a test: figures depend on the machine.
"""
import argparse, json, os, platform, tempfile, time, warnings
from pathlib import Path
import torch
from fastai.callback.core import Callback
from he2ihc.synthetic import make_demo_dataset
from he2ihc.data import paired_dls
from he2ihc.train import stain_learner

class IterTimer(Callback):
    "Wall time of each training iteration (synchronised on CUDA)."
    order = 0
    def before_fit(self): self.times = []
    def before_batch(self):
        if self.training:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.t = time.perf_counter()
    def after_batch(self):
        if self.training:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t)

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--methods', nargs='+', default=['asp', 'ours'])
    p.add_argument('--crop', type=int, default=256, help="training crop side")
    p.add_argument('--iters', type=int, default=6, help="timed iterations per method")
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args()
    res = dict(machine=platform.node(), cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
               gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, crop=a.crop, precision=a.precision)
    print(json.dumps(res), flush=True)
    data = make_demo_dataset(Path(tempfile.mkdtemp())/'demo', n_train=a.iters + 2, n_val=1, size=a.crop, progress=False)
    for m in a.methods:
        dls = paired_dls(data, crop_size=a.crop, bs=1)
        timer = IterTimer()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            learn = stain_learner(dls, m, seed=0, precision=a.precision, channels_last=a.channels_last, cbs=[timer])
        with learn.no_bar(), learn.no_logging(): learn.fit_flat_lin(1, 0)
        t = timer.times[2:]   # the first two iterations warm up allocators and kernels
        res[f'{m}_s_per_iter'] = round(sum(t) / len(t), 3)
        print(f"{m}: {res[f'{m}_s_per_iter']} s/iter at {a.crop}x{a.crop}, batch 1 ({len(t)} timed iterations)", flush=True)
    if a.out: a.out.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
