"""Where a training step's time goes on this machine: torch.profiler over a few steps, the operators' own time grouped by kind.

    python benchmarks/step_profile.py --case ours:256 --case ours_fast:96 --precision fp32 bf16 --steps 4 --threads 2

Each case is METHOD:SIZE (batch 1; METHOD:SIZE:warmup for a step of a preset's pixel-term warm-up; METHOD may carry
train_step.py's suffixes, e.g. ours_fast@bs4:96 for the demo's batch of 4 crops), built and driven as benchmarks/train_step.py drives it (a whole training batch:
D step, G step, every loss term, both optimisers, fastai's events; the batch already in memory). After two warm-up
steps, `--steps` steps are profiled; each operator's self time (its own, not its children's) is put in one kind by its
name, and what no operator accounts for (Python: the losses' and fastai's code between operators, the profiler's own
cost) is the wall time less the operators' total. Prints a markdown table per precision; --out writes JSON. Not a test.
"""
import argparse, json, os, platform, re, sys, time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_step import He2ihcStep

KINDS = [   # (kind, pattern on the operator's name); the first that matches wins
    ('convolution, backward', r'convolution_backward|mkldnn_convolution_backward|conv.*backward|nnpack.*backward'),
    ('convolution, forward', r'convolution|conv2d|mkldnn_conv|nnpack'),
    ('normalisation', r'instance_norm|batch_norm|native_batch_norm|group_norm|layer_norm|_norm_backward|norm_backward'),
    ('padding', r'pad|reflection|replication'),
    ('layout and dtype copies (reorders, casts)', r'aten::to$|_to_copy|copy_|contiguous|clone|to_dense|to_mkldnn|reorder|empty_strided'),
    ('spectral norm (power iteration)', r'aten::mv$|aten::dot|linalg_vector_norm|aten::norm$|aten::vdot'),
    ('matrix products (PatchNCE, attention)', r'aten::bmm|aten::mm$|aten::matmul|aten::addmm|aten::baddbmm|aten::linear'),
    ('sampling and indexing (PatchNCE)', r'index|gather|scatter|randperm|randint|take|masked|nonzero|where'),
    ('optimisers (Adam)', r'_foreach|adam|addcdiv|addcmul|lerp|sqrt_|_fused'),
    ('activations, losses and other element-wise', r'relu|tanh|sigmoid|leaky|elu|mul|add|sub|div|exp|log|pow|abs|mean|sum|neg|clamp|softmax|cross_entropy|nll|mse|l1|max|min|cat|stack|fill|zero|ones|rsub|sign|sqrt|rand|normal|uniform|bernoulli|dropout|lt|gt|eq|ne|ge|le'),
    ('views and shape (no data moved)', r'view|reshape|permute|transpose|expand|slice|select|squeeze|unsqueeze|narrow|split|chunk|flatten|unbind|as_strided|t$|detach|alias|empty|resize_|set_|result_type|item|_local_scalar'),
]


def kind_of(name:str)->str:
    for k, pat in KINDS:
        if re.search(pat, name, re.I): return k
    return 'other operators'


def profile(step, n:int)->dict:
    from torch.profiler import profile as tprof, ProfilerActivity
    for _ in range(2): step()
    step.finish()
    t0 = time.perf_counter()
    with tprof(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n): step()
    wall = (time.perf_counter() - t0) / n
    step.finish()
    by, names = defaultdict(float), defaultdict(float)
    for e in prof.key_averages():
        if e.key.startswith('ProfilerStep') or e.key.startswith('##'): continue
        s = e.self_cpu_time_total / 1e6 / n
        by[kind_of(e.key)] += s; names[e.key] += s
    ops = sum(by.values())
    by['Python between operators (losses, fastai events, profiler)'] = max(0.0, wall - ops)
    return dict(wall=wall, kinds=dict(by), top=sorted(names.items(), key=lambda kv: -kv[1])[:12])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--case', action='append', default=None, help='METHOD:SIZE[:warmup] (default ours:256, ours_fast:96 and ours_fast:96:warmup)')
    ap.add_argument('--precision', nargs='+', default=['fp32', 'bf16'])
    ap.add_argument('--steps', type=int, default=4)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--out', type=Path, default=None)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    cases = a.case or ['ours:256', 'ours_fast:96', 'ours_fast:96:warmup']
    res = dict(machine=platform.processor() or platform.machine(), torch=torch.__version__, threads=torch.get_num_threads(), cases={})
    for c in cases:
        method, size, *phase = c.split(':'); size = int(size)
        for prec in a.precision:
            step = He2ihcStep(method, size, 1, 'cpu', precision=prec)
            warm = step.learn.stain_trainer.preset.warmup_epochs if hasattr(step.learn.stain_trainer, 'preset') else 0
            if phase != ['warmup']: step.learn.epoch = warm   # (past a preset's warm-up: every term, both networks)
            r = profile(step, a.steps)
            res['cases'][f"{method} {size}px {prec}{' warm-up' if phase == ['warmup'] else ''}"] = r
            print(f"{method} {size}px {prec}: {r['wall']:.3f} s/step; top operators:",
                  ', '.join(f"{k} {v * 1e3:.0f} ms" for k, v in r['top'][:6]), flush=True)
    kinds = [k for k, _ in KINDS] + ['other operators', 'Python between operators (losses, fastai events, profiler)']
    cols = list(res['cases'])
    print('\n| kind | ' + ' | '.join(cols) + ' |\n|---|' + '---|' * len(cols))
    for k in kinds:
        print(f'| {k} | ' + ' | '.join(f"{res['cases'][c]['kinds'].get(k, 0) * 1e3:.0f} ms ({100 * res['cases'][c]['kinds'].get(k, 0) / res['cases'][c]['wall']:.0f} %)" for c in cols) + ' |')
    print('| **step, wall** | ' + ' | '.join(f"**{res['cases'][c]['wall'] * 1e3:.0f} ms**" for c in cols) + ' |')
    if a.out: a.out.write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
