"""The demo with other settings: `he2ihc.demo.train_demo` on one seed's demo dataset with preset overrides, judged by the
demo's verdict, with the darkness of the virtual brown grade by grade (the 99th percentile of each held-out tile's DAB
optical density, `he2ihc.metrics.dab_od`, mean over the tiles of a grade, virtual / real).

    python benchmarks/demo_schedules.py OUT/half-s0 --seed 0 --threads 1 --set iterations=1024 dab_pool=2
    python benchmarks/demo_schedules.py OUT/warm18-s1 --seed 1 --threads 1 --set n_epochs=14 n_epochs_decay=8 warmup_epochs=18
    python benchmarks/demo_schedules.py OUT/ema-s0 --seed 0 --threads 1 --ema 0.99 0.995 --set n_epochs=14 n_epochs_decay=10 warmup_epochs=22
    python benchmarks/demo_schedules.py OUT/ring-s0 --seed 0 --threads 1 --dab-weighted 0.5 --weight-by both --set n_epochs=14 n_epochs_decay=10 warmup_epochs=22

Two changes to the objective, for experiments only (neither is in the library): `--ema D ...` keeps exponential moving
averages of the generator's weights (decay D per iteration, from the first) beside the run and judges each as the
trained generator; `--dab-weighted K` adds to the DAB term (before its weight `lambda_dab`) K times the pixel-wise L1
of the DAB amounts weighted by the real IHC's DAB there (`--weight-by real`) or by the larger of the real's and the
virtual's (`--weight-by both`), normalised by the weights' sum: the membranes' pixels, where HER2 is read, count more.

Prints one JSON line (the verdict's measures, minutes of training, the seconds each epoch took from the end of the one
before, the DAB percentiles) and appends it to OUT/../schedules.jsonl. The first epoch's seconds count from the line
that starts the training, so building the networks is in them. What a warm-up epoch and a later one cost on this
machine (two threads, idle; the last epoch also validates):

    python benchmarks/demo_schedules.py OUT/epochs --seed 0 --threads 2 --set n_epochs=4 n_epochs_decay=0 warmup_epochs=2"""
import argparse, json, time
from pathlib import Path

def value(s:str):
    "A --set value: an int, a float, or the string itself."
    for t in (int, float):
        try: return t(s)
        except ValueError: pass
    return s

def weigh_dab(k:float, by:str='real'):
    "Add k x the DAB-weighted pixel L1 of the DAB amounts to the objective's DAB term (`he2ihc.objectives` looks `dab_l1` up when it runs)."
    import torch, he2ihc.objectives as objectives
    from he2ihc.losses import dab_l1, dab_density
    def weighted(fake, real, pool=8, stains=None):
        d = dab_density(torch.cat([fake, real]).float(), stains); df, dr = d[:len(fake)], d[len(fake):]
        w = (torch.maximum(dr, df) if by == 'both' else dr).detach()
        return dab_l1(fake, real, pool, stains) + k * ((df - dr).abs() * w).sum() / w.sum().clamp(min=1e-6)
    objectives.dab_l1 = weighted

class EMA:
    "Moving averages of the generator's weights, one per decay, updated after every training iteration (a fastai callback's `after_batch`)."
    def __init__(self, decays): self.decays, self.models = decays, {}
    def callback(self):
        import copy, torch
        from fastai.callback.core import Callback
        ema = self
        class _EMA(Callback):
            order = 50
            def before_fit(self): ema.models = {d: copy.deepcopy(self.learn.model.G).eval() for d in ema.decays}
            def after_batch(self):
                if not self.training: return
                with torch.no_grad():
                    now = list(self.learn.model.G.state_dict().values())
                    for d, m in ema.models.items():
                        for e, p in zip(m.state_dict().values(), now):
                            if e.dtype.is_floating_point: e.mul_(d).add_(p.detach(), alpha=1 - d)
                            else: e.copy_(p)
        return _EMA()

def keep_emas(emas:EMA):
    "Make `train_demo`'s learner carry `emas`' callback (`he2ihc.demo` looks `train_run` up in `he2ihc.runs` when it runs)."
    import he2ihc.runs as runs
    train_run = runs.train_run
    def with_emas(*args, on_start=None, **kw):
        def start(learn):
            if on_start: on_start(learn)
            learn.add_cb(emas.callback())
        return train_run(*args, on_start=start, **kw)
    runs.train_run = with_emas

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out', help="the run's folder (replaced)")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help="train_demo / preset overrides, e.g. iterations=1024 dab_pool=2")
    ap.add_argument('--ema', nargs='*', type=float, default=[], metavar='D', help="also judge moving averages of the generator's weights with these decays")
    ap.add_argument('--dab-weighted', type=float, default=0., metavar='K', help="add K x the DAB-weighted pixel L1 of the DAB amounts to the DAB term")
    ap.add_argument('--weight-by', choices=('real', 'both'), default='real', help="--dab-weighted's weights: the real IHC's DAB, or the larger of both")
    a = ap.parse_args()
    import numpy as np, torch
    if a.threads: torch.set_num_threads(a.threads)
    from he2ihc.demo import train_demo, demo_verdict
    from he2ihc.metrics import dab_od
    from he2ihc.tiles import load_rgb, score_from_name
    from he2ihc.inference import translate
    from he2ihc.checkpoints import load_generator
    from he2ihc.data import find_pairs
    over = {k: value(v) for k, v in (s.split('=', 1) for s in a.set)}
    if a.dab_weighted: weigh_dab(a.dab_weighted, a.weight_by)
    emas = EMA(a.ema) if a.ema else None
    if emas: keep_emas(emas)
    out, t, ends = Path(a.out), time.time(), []
    def log(*msg):   # train_demo's lines: the first starts the training, then one as each epoch ends
        ends.append(time.perf_counter())
    r = train_demo(out, seed=a.seed, progress=False, overwrite=True, log=log, **over)
    held = find_pairs(out/'data').splits['val']
    def judged(G, results):   # the verdict's measures and the DAB p99 per grade of generator G
        ok, why = demo_verdict(results)
        p99 = {}
        for p in held:
            he, ihc = np.asarray(load_rgb(p.he)), np.asarray(load_rgb(p.ihc))
            p99.setdefault(score_from_name(p.name), []).append((np.percentile(dab_od(translate(G, he)), 99), np.percentile(dab_od(ihc), 99)))
        tr = results['trained']
        return dict(passes=ok, **{k: round(tr[k], 3) for k in ('HER2_kappa', 'HER2_acc', 'HER2_3plus_recall', 'Membrane_MAE', 'Ring_2plus', 'Ring_3plus')},
                    dab_p99={k: '%.2f / %.2f' % tuple(np.mean(v, 0)) for k, v in sorted(p99.items())}, verdict=why)
    line = dict(out=str(out), seed=a.seed, settings=over, train_min=round(r['train_seconds'] / 60, 1), min=round((time.time() - t) / 60, 1),
                **({'dab_weighted': a.dab_weighted, 'weight_by': a.weight_by} if a.dab_weighted else {}),
                epoch_s=[round(b - e, 1) for e, b in zip(ends, ends[1:])], **judged(load_generator(out/'generator.pt'), r['results']))
    from he2ihc.demo import evaluate_translations
    for d, G in (emas.models.items() if emas else ()):
        line[f'ema {d}'] = judged(G, {**r['results'], 'trained': evaluate_translations(G, held)})
    print(json.dumps(line), flush=True)
    with open(out.parent/'schedules.jsonl', 'a') as f: f.write(json.dumps(line) + '\n')

if __name__ == '__main__': main()
