"""Time training steps: seconds per iteration, images per second, peak memory and FLOPs of method presets.

Usage:
    python benchmarks/train_step.py [--methods asp ours] [--size 256] [--bs 1] [--iters 4] [--rounds 2]
                                    [--precision fp32] [--channels-last] [--reference PATH] [--out results.json]

Each step is a whole training batch (D step + G step, every loss term, both optimisers, fastai's events) on a fixed batch
already on the device, so data loading is left out (benchmarks/data_loading.py times that). Methods are timed in
rounds, interleaved (round 1: asp, ours, ...; round 2: ...), so that a machine whose load changes affects them alike;
compare methods by the ratios of one run. `--reference PATH` adds the public ASP implementation's step (a checkout of
github.com/lifangda01/AdaptiveSupervisedPatchNCE; see reference_step.py) to the rounds. A method written `asp@onednn`
runs that preset with PyTorch's default CPU convolutions instead of NNPACK's (he2ihc.models.fast_cpu_convs), and
`asp@compile` with torch.compile (GPU), so one run can show what each part of the speed-up is worth; `ours@bf16` (or
@fp32, @fp16) trains that row in its own precision, so fp32 and bf16 steps can be interleaved in one run; `@bs4` gives a
row its own batch size, and `@adv` times a step after a preset's pixel-term warm-up (`ours_fast`: every term, both
networks; without it, a warm-up step); `@nodab` drops `ours_fast`'s DAB optical-density term.

FLOPs per step are counted once per method with torch.utils.flop_counter (matrix products and convolutions, forward
and backward, as a direct convolution does them: NNPACK's Winograd and FFT convolutions do fewer multiplications, so
on a CPU GFLOP/s is the effective rate); utilisation = FLOPs per step / seconds per step / the device's peak (--peak-tflops, or the table below
for known GPUs). Peak memory is torch.cuda.max_memory_allocated on a GPU, the process's resident set size (sampled)
on a CPU. Results: JSON (--out) and a markdown table (--md). Not a test: figures depend on the machine.
"""
import argparse, contextlib, json, os, platform, sys, threading, time, warnings
from pathlib import Path
import torch

# dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets (H100 SXM5 / H200 SXM: same compute; A100 SXM4 80GB)
# 'tf32': float32 convolutions on tensor cores, which PyTorch allows by default (torch.backends.cudnn.allow_tf32)
PEAK_TFLOPS = {'H100': {'bf16': 989.0, 'fp16': 989.0, 'tf32': 494.7, 'fp32': 67.0},
               'H200': {'bf16': 989.0, 'fp16': 989.0, 'tf32': 494.7, 'fp32': 67.0},
               'A100': {'bf16': 312.0, 'fp16': 312.0, 'tf32': 156.0, 'fp32': 19.5}}

def device_peak(precision:str, override=None):
    "Peak TFLOP/s of this device at `precision` (TF32 for fp32 where cuDNN may use it): `override`, else the table, else None."
    if override: return override
    if not torch.cuda.is_available(): return None
    if precision == 'fp32' and torch.backends.cudnn.allow_tf32: precision = 'tf32'
    name = torch.cuda.get_device_name(0)
    for k, v in PEAK_TFLOPS.items():
        if k in name: return v[precision]

class RSSPeak:
    "Largest resident set size of this process while active (sampled every 10 ms), in bytes."
    def __enter__(self):
        self.peak, self.stop = 0, False
        def sample():
            while not self.stop:
                self.peak = max(self.peak, int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE'))
                time.sleep(0.01)
        self.t = threading.Thread(target=sample, daemon=True); self.t.start(); return self
    def __exit__(self, *a): self.stop = True; self.t.join()

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

class He2ihcStep:
    "One method preset's training step on a fixed batch, driven without the data loader."
    def __init__(self, method, size, bs, device, precision='fp32', channels_last=False, compile=False, nan_check='step', **overrides):
        import tempfile
        from he2ihc.synthetic import make_demo_dataset
        from he2ihc.data import paired_dls
        from he2ihc.train import stain_learner
        from he2ihc.models import fast_cpu_convs
        method, *flags = method.split('@')
        bad = {f for f in flags if not (f in ('onednn', 'compile', 'fp32', 'bf16', 'fp16', 'adv', 'nodab') or (f[:2] == 'bs' and f[2:].isdigit()))}
        if bad: raise SystemExit(f"unknown method suffix in {method}@{'@'.join(flags)}: use @onednn, @compile, @fp32, @bf16, @fp16, @adv, @nodab or @bsN")
        if 'nodab' in flags: overrides = {**overrides, 'lambda_dab': 0.}   # a preset without its DAB optical-density term (ours_fast's)
        precision = next((f for f in flags if f in ('fp32', 'bf16', 'fp16')), precision)   # a method's own precision, e.g. ours@bf16
        bs = self.bs = next((int(f[2:]) for f in flags if f[:2] == 'bs'), bs)               # its own batch, e.g. ours_fast@bs4
        self.convs = (lambda: fast_cpu_convs(False)) if 'onednn' in flags else contextlib.nullcontext
        compile = compile or 'compile' in flags
        global _demo
        if '_demo' not in globals():   # any tiny dataset of tiles the crop fits in: the learner needs DataLoaders, the batch is made here
            _demo = make_demo_dataset(Path(tempfile.mkdtemp())/'demo', n_train=2, n_val=1, size=size, seed=0, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            dls = paired_dls(_demo, crop_size=size, bs=1, device=device)   # (the crop the discriminator is checked against)
            self.learn = learn = stain_learner(dls, method, precision=precision, channels_last=channels_last, compile=compile,
                                               nan_check=nan_check, seed=0, **overrides)
        learn.create_opt(); learn.model.train(); learn.epoch, learn.iter, learn.training = 0, 0, True
        if 'adv' in flags: learn.epoch = learn.stain_trainer.preset.warmup_epochs   # past a preset's pixel-term warm-up: every term, both networks
        self.t = learn.stain_trainer; self.t.before_fit()
        g = torch.Generator().manual_seed(0)
        he, ihc = [(torch.rand(bs, 3, size, size, generator=g) * 2 - 1).to(device) for _ in range(2)]
        if channels_last: he, ihc = [x.contiguous(memory_format=torch.channels_last) for x in (he, ihc)]
        learn.xb, learn.yb = (he,), (ihc,)
        self.device = torch.device(device)
    def __call__(self):
        if hasattr(self.t, '_step_paired'):   # he2ihc before the step moved into fastai's loop (to time a checkout of it)
            with self.convs(): terms = self.t._step_paired()
            self.t._pending.append((list(terms), 1, torch.stack([v.detach().float() for v in terms.values()])))
        else:
            with self.convs(): self.learn._do_one_batch()   # a training batch as Learner.fit runs it, fastai's events included
    def finish(self): self.t._flush(); self.t._history.clear()

def count_flops(step)->float:
    "FLOPs of one `step`, as a direct convolution counts them (the counter does not see NNPACK's calls, so it runs without)."
    from torch.utils.flop_counter import FlopCounterMode
    from he2ihc.models import fast_cpu_convs
    fc = FlopCounterMode(display=False)
    with fast_cpu_convs(False), fc: step()
    return fc.get_total_flops()

def run(steps:dict, bs:int, iters:int, rounds:int, warmup:int=2)->dict:
    "Time the `steps` (name -> callable) interleaved: `rounds` rounds of `iters` steps each, after `warmup` steps."
    res = {}
    for name, step in steps.items():
        for _ in range(warmup): step()
        if hasattr(step, 'finish'): step.finish()
        res[name] = dict(times=[], peak_mem=0, loadavg=[])
    for r in range(rounds):
        for name, step in steps.items():
            dev = getattr(step, 'device', torch.device('cpu'))
            if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
            with RSSPeak() as rss:
                for _ in range(iters):
                    sync(dev); t0 = time.perf_counter(); step(); sync(dev)
                    res[name]['times'].append(time.perf_counter() - t0)
            if hasattr(step, 'finish'): step.finish()
            mem = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else rss.peak
            res[name]['peak_mem'] = max(res[name]['peak_mem'], mem)
            res[name]['loadavg'].append(round(os.getloadavg()[0], 2))
    for name, r in res.items():
        t = sorted(r['times'])
        r['s_per_iter'] = sum(r['times']) / len(r['times'])
        r['s_per_iter_median'] = t[len(t) // 2]
        r['images_per_s'] = getattr(steps[name], 'bs', bs) / r['s_per_iter']
    return res

def markdown(rows:list)->str:
    head = ('| device | method | size | batch | precision | s/iter | images/s | peak memory (GiB) | GFLOP/step | utilisation | '
            'ratio to first | load avg |\n|' + '---|' * 12)
    out = [head]
    for r in rows:
        util = f"{100 * r['utilisation']:.1f} %" if r.get('utilisation') is not None else '-'
        out.append(f"| {r['device']} | {r['method']} | {r['size']} | {r['bs']} | {r['precision']} | {r['s_per_iter']:.3f} | "
                   f"{r['images_per_s']:.2f} | {r['peak_mem'] / 2**30:.2f} | {r['gflop']:.0f} | {util} | {r['ratio']:.2f} | "
                   f"{', '.join(str(x) for x in r['loadavg'])} |")
    return '\n'.join(out)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=['asp', 'ours'])
    p.add_argument('--size', type=int, default=256, help="training crop side")
    p.add_argument('--bs', type=int, default=1)
    p.add_argument('--iters', type=int, default=3, help="timed steps per method and round")
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--compile', action='store_true', help="torch.compile the generator and discriminator passes")
    p.add_argument('--nan-check', default='step', choices=['step', 'epoch'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--reference', type=Path, default=None, help="checkout of the public ASP code: time its step too, first")
    p.add_argument('--no-flops', action='store_true')
    p.add_argument('--peak-tflops', type=float, default=None, help="the device's peak, for utilisation (default: known GPUs)")
    p.add_argument('--out', type=Path, default=None, help="JSON file")
    p.add_argument('--md', type=Path, default=None, help="markdown table file")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(0) if dev.type == 'cuda' else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    from he2ihc.models import FAST_CPU_CONVS
    info = dict(device=name, torch=torch.__version__, size=a.size, bs=a.bs, precision=a.precision, channels_last=a.channels_last,
                compile=a.compile, nnpack_cpu_convs=FAST_CPU_CONVS, loadavg_start=os.getloadavg())
    print(json.dumps(info), flush=True)
    steps = {}
    if a.reference is not None:
        sys.path.insert(0, str(Path(__file__).parent))
        from reference_step import ReferenceStep
        if a.precision != 'fp32': raise SystemExit("the reference trains in float32 only")
        steps['reference'] = ReferenceStep(a.reference, a.size, a.bs, a.device)
    for m in a.methods: steps[m] = He2ihcStep(m, a.size, a.bs, a.device, a.precision, a.channels_last, a.compile, a.nan_check)
    res = run(steps, a.bs, a.iters, a.rounds, a.warmup)
    peak = device_peak(a.precision, a.peak_tflops)
    first = next(iter(res.values()))['s_per_iter']
    rows = []
    for m, r in res.items():
        gflop = 0 if a.no_flops else count_flops(steps[m]) / 1e9
        util = gflop / r['s_per_iter'] / (peak * 1e3) if peak and gflop else None
        rows.append(dict(device=name, method=m, size=a.size, bs=getattr(steps[m], 'bs', a.bs), precision=getattr(getattr(steps[m], 't', None), 'precision', 'fp32') + (' cl' if a.channels_last else ''),
                         gflop=gflop, utilisation=util, ratio=r['s_per_iter'] / first, **r))
        print(f"{m}: {r['s_per_iter']:.3f} s/iter ({r['images_per_s']:.2f} images/s), {gflop:.0f} GFLOP/step, "
              f"peak memory {r['peak_mem'] / 2**30:.2f} GiB, ratio to {next(iter(res))} {r['s_per_iter'] / first:.3f}, "
              f"load {r['loadavg']}", flush=True)
    table = markdown(rows)
    print(table)
    if a.out: a.out.write_text(json.dumps(dict(info=info, rows=rows), indent=1))
    if a.md: a.md.write_text(table + '\n')
    return rows

if __name__ == '__main__': main()
