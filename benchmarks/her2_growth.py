"""How HER2 agreement grows with training: train methods on the synthetic demo data for a time budget each, and score
the held-out pairs every few hundred iterations (HER2 quadratic kappa and accuracy between virtual and real IHC, DAB
p90 Pearson r), beside the untrained generator and the identity (the H&E itself).

Meant for a GPU (`benchmarks/gpu_her2_growth.sh`), where the paper's 256-512 px crops fit a few minutes; `--quick`
runs a miniature on a CPU to check the script. Writes to --out: growth.csv (one row per evaluation), growth.png,
samples_METHOD.png (the first held-out tiles) and summary.json.

    python benchmarks/her2_growth.py --methods ours asp --size 256 --crop 256 --minutes 4 --out gpu_out/her2_growth
"""
import argparse, csv, json, time, warnings
from pathlib import Path

import torch
from fastai.callback.core import Callback, CancelFitException

from he2ihc.synthetic import make_demo_dataset
from he2ihc.data import paired_dls
from he2ihc.magnification import MultiMagViews
from he2ihc.presets import get_preset
from he2ihc.train import stain_learner
from he2ihc.demo import evaluate_translations, DEMO_ACCEPTANCE, _sample_grid
from he2ihc.reproduce import measure_step, budget_schedule
from he2ihc.cli import _overrides

KEYS = ('HER2_kappa', 'HER2_acc', 'Membrane_MAE', 'DAB_p90_r', 'psnr', 'ssim')


def scores(G, dl)->dict:
    "The held-out measures of G (None: the identity), leaving G in the mode it was in."
    was = G.training if G is not None else None
    r = evaluate_translations(G, dl)
    if G is not None: G.train(was)
    return {k: float(r[k]) if isinstance(r[k], (int, float)) else float('nan') for k in KEYS}


class Monitor(Callback):
    "Score the held-out pairs every `every` training iterations (and at the end); stop the fit past `deadline`."
    order = 90
    def __init__(self, method, every, valid, rows, write, deadline):
        self.method, self.every, self.valid, self.rows, self.write, self.deadline = method, every, valid, rows, write, deadline
        self.n, self.train_s, self.tick = 0, 0.0, None
    def before_batch(self):
        if self.training: self.tick = time.perf_counter()
    def after_batch(self):
        if not self.training: return
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.train_s += time.perf_counter() - self.tick; self.n += 1
        if self.n % self.every == 0: self.score()
        if time.time() > self.deadline: raise CancelFitException()
    def score(self):
        row = dict(method=self.method, iteration=self.n, train_s=round(self.train_s, 1),
                   lr=float(self.learn.opt.hypers[0]['lr'])) | scores(self.learn.model.G, self.valid)
        self.rows.append(row); self.write()
        print(f"  {self.method} it {self.n:6d} ({self.train_s:6.0f} s): kappa {row['HER2_kappa']:.3f} acc {row['HER2_acc']:.3f} "
              f"membrane MAE {row['Membrane_MAE']:.3f}", flush=True)


def figure(rows, base, path):
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, k, least in zip(axs, ('HER2_kappa', 'Membrane_MAE'), (DEMO_ACCEPTANCE['HER2_kappa'], DEMO_ACCEPTANCE['Membrane_MAE'])):
        for m in dict.fromkeys(r['method'] for r in rows):
            rs = [r for r in rows if r['method'] == m]
            ax.plot([r['iteration'] for r in rs], [r[k] for r in rs], 'o-', label=m)
        ax.axhline(base[k], color='grey', ls='--', label='identity (H&E)')
        ax.axhline(least, color='green', ls=':', label='demo acceptance')
        ax.set_xlabel('training iteration'); ax.set_title(k); ax.set_ylim(-1.05, 1.05)
    axs[0].legend(fontsize=8); fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--methods', nargs='+', default=['ours', 'asp'])
    ap.add_argument('--out', default='her2_growth')
    ap.add_argument('--data', help='paired dataset (default: a synthetic demo dataset made in OUT/data)')
    ap.add_argument('--size', type=int, default=256, help='tile side of the synthetic dataset (default 256)')
    ap.add_argument('--n-train', type=int, default=64); ap.add_argument('--n-val', type=int, default=16)
    ap.add_argument('--crop', type=int, default=256, help='training crop (default 256)')
    ap.add_argument('--minutes', type=float, default=4.0, help='training time per method; the schedule (constant, then '
                    'linear decay, in the preset\'s proportion) is chosen for it from a measured step')
    ap.add_argument('--evals', type=int, default=12, help='evaluations per method, evenly spaced (default 12)')
    ap.add_argument('--bs', type=int, default=1, help='training batch size (default 1, as the paper; the learning rate is the preset\'s)')
    ap.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    ap.add_argument('--set', nargs='*', default=[], metavar='NAME=VALUE', help='preset overrides, e.g. ngf=32')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--quick', action='store_true', help='a miniature (tiny data and networks) to check the script on a CPU')
    a = ap.parse_args(argv)
    warnings.simplefilter('ignore')
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    over = _overrides(a.set)
    if a.quick:
        a.size, a.n_train, a.n_val, a.crop = 64, 8, 4, 48
        over = dict(ngf=8, ndf=8, g_blocks=5, d_layers=2, num_patches=16) | over
    data = Path(a.data) if a.data else out/'data'
    if not (data/'manifest.csv').exists() and not a.data:
        make_demo_dataset(data, n_train=a.n_train, n_val=a.n_val, size=a.size, seed=a.seed, progress=False)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    where = torch.cuda.get_device_name(0) if device == 'cuda' else f"CPU, {torch.get_num_threads()} threads"
    print(f"he2ihc HER2 growth on {where}: {a.methods}, {a.minutes} min each, crop {a.crop}, batch {a.bs}, data {data}", flush=True)
    rows, summary = [], dict(device=where, torch=torch.__version__, args=vars(a), methods={})
    def write():
        with open(out/'growth.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=['method', 'iteration', 'train_s', 'lr', *KEYS]); w.writeheader(); w.writerows(rows)
    for m in a.methods:
        p = get_preset(m, crop_size=a.crop, **over)
        mm = MultiMagViews(p.crop_size) if p.multimag else None
        dls = paired_dls(data, crop_size=p.crop_size, bs=a.bs, val_bs=4, unpaired=p.unpaired, multimag=mm, device=device)
        if not summary.get('identity'): summary['identity'] = scores(None, dls.valid)
        meas = measure_step(dls, p, a.precision)
        n, d = budget_schedule(a.minutes * 60, meas['step_s'], meas['iters_per_epoch'], p.n_epochs, p.n_epochs_decay)
        total = (n + d) * meas['iters_per_epoch']
        every = max(1, total // a.evals)
        print(f"{m}: {meas['step_s']:.3f} s per step x {meas['iters_per_epoch']} per epoch: {n} + {d} epochs, {total} iterations, "
              f"scored every {every}" + (f", {meas['peak_gib']:.1f} GiB" if meas['peak_gib'] else ''), flush=True)
        learn = stain_learner(dls, p, precision=a.precision, seed=a.seed, n_epochs=n, n_epochs_decay=d)
        rows.append(dict(method=m, iteration=0, train_s=0.0, lr=p.lr) | scores(learn.model.G, dls.valid)); write()
        mon = Monitor(m, every, dls.valid, rows, write, deadline=time.time() + 2 * a.minutes * 60 + 60)
        t0 = time.time()
        with learn.no_bar(), learn.no_logging(): learn.fit_flat_lin(cbs=[mon])
        mon.learn = learn   # (fastai detaches a fit's callbacks when it ends)
        if rows[-1]['iteration'] != mon.n: mon.score()
        G = learn.model.G.eval()
        with torch.no_grad(): _sample_grid({f'trained {m}': G}, dls.valid.dataset, out/f'samples_{m}.png')
        summary['methods'][m] = dict(schedule=[n, d], iterations=mon.n, planned=total, step_s=meas['step_s'], train_s=mon.train_s,
                                     wall_s=time.time() - t0, peak_gib=meas['peak_gib'], last=rows[-1])
        (out/'summary.json').write_text(json.dumps(summary, indent=1))
        figure(rows, summary['identity'], out/'growth.png')
        del learn, G
        if device == 'cuda': torch.cuda.empty_cache()
    print(f"identity (H&E): kappa {summary['identity']['HER2_kappa']:.3f} membrane MAE {summary['identity']['Membrane_MAE']:.3f}; written to {out}")


if __name__ == '__main__': main()
