"""Does the confidence of a virtual HER2 score find the wrong ones? Measured on demo generators of several seeds.

For each generator (a `he2ihc demo --seed N` run folder: RUN/generator.pt), on held-out demo tiles drawn from a seed
no setting was chosen on (64 tiles, 16 per score):
  - d8: the generator's disagreement with itself under the 8 flips and quarter turns of the H&E (test-time augmentation):
        the share of the 8 virtual tiles scored like the plain one, and the mean per-pixel spread of their DAB;
  - margin: `he2ihc.her2.stain_margin` of the plain virtual tile (no extra generator pass);
  - seeds: the share of the other generators whose virtual tile is scored alike; and the mean of the margin and it
    (what `he2ihc.slides.region_confidence` writes when other generators are given).
A score is wrong when it differs from the real IHC's (`score_ihc`). AUROC of each measure for "wrong", over all tiles
and without the real 3+ tiles (which the demo's generators under-call on every seed).

Then the same on a slide: the 64 held-out tiles laid edge to edge into an 8 x 8 slide (1 um/px), translated by each
generator with `translate_slide`, scored with `score_slide` (regions of one tile), against the real IHC's regions.

    python benchmarks/her2_confidence.py RUN0 RUN1 ... --out /tmp/conf_out   # writes results.json and her2_confidence.jpg
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from he2ihc.checkpoints import load_generator
from he2ihc.data import find_pairs
from he2ihc.her2 import score_ihc, separate_hdab, stain_margin
from he2ihc.inference import translate, translate_slide
from he2ihc.slides import score_slide, region_confidence
from he2ihc.synthetic import make_demo_dataset, DEMO_MPP
from he2ihc.tiles import load_rgb, HER2_SCORES
from he2ihc.wsi import write_pyramidal_tiff


def d8(a, k):
    "The k-th of the 8 flips and quarter turns (k % 4 quarter turns, then a left-right flip from k = 4)."
    a = np.rot90(a, k % 4)
    return a[:, ::-1] if k >= 4 else a


def d8_back(a, k):
    if k >= 4: a = a[:, ::-1]
    return np.rot90(a, -(k % 4))


def auroc(wrong, unsure):
    wrong = np.asarray(wrong, bool)
    return float(roc_auc_score(wrong, unsure)) if 0 < wrong.sum() < len(wrong) else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='+', help='demo run folders, each with generator.pt')
    ap.add_argument('--out', default='her2_confidence_out')
    ap.add_argument('--seed', type=int, default=2026, help='seed of the held-out tiles')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    data = out/'held_out'
    if not (data/'manifest.csv').exists():
        make_demo_dataset(data, n_train=0, n_val=64, seed=a.seed, section='same', progress=False, n_workers=0)
    pairs = find_pairs(data).splits['val']
    he = [np.asarray(load_rgb(p.he)) for p in pairs]
    real = [score_ihc(np.asarray(load_rgb(p.ihc))).score for p in pairs]
    gens = [load_generator(Path(r)/'generator.pt').eval() for r in a.runs]

    # tiles
    tiles, t_plain, t_d8 = [], 0.0, 0.0
    for g, G in enumerate(gens):
        for i, x in enumerate(he):
            t0 = time.perf_counter(); plain = translate(G, x); rp = score_ihc(plain); m = stain_margin(rp); t_plain += time.perf_counter() - t0
            t0 = time.perf_counter()
            views = [plain] + [np.ascontiguousarray(d8_back(translate(G, np.ascontiguousarray(d8(x, k))), k)) for k in range(1, 8)]
            sc = [rp.score] + [score_ihc(v).score for v in views[1:]]
            dab = np.stack([separate_hdab(v)[1] for v in views]); t_d8 += time.perf_counter() - t0
            tiles.append(dict(gen=g, tile=i, real=real[i], virtual=rp.score, margin=m, d8_agree=float(np.mean([s == rp.score for s in sc])),
                              d8_dab_sd=float(dab.std(0).mean())))
        print(f'{a.runs[g]}: tiles scored', flush=True)
    for t in tiles:
        others = [u['virtual'] for u in tiles if u['tile'] == t['tile'] and u['gen'] != t['gen']]
        t['seeds_agree'] = float(np.mean([o == t['virtual'] for o in others]))
        t['confidence_seeds'] = region_confidence(t['margin'], t['seeds_agree'])
    wrong = np.array([t['virtual'] != t['real'] for t in tiles])
    not3 = np.array([t['real'] != '3+' for t in tiles])
    measures = {'d8 agreement': lambda t: -t['d8_agree'], 'd8 DAB spread': lambda t: t['d8_dab_sd'],
                'stain margin': lambda t: -t['margin'], 'seeds agreement': lambda t: -t['seeds_agree'],
                'margin + seeds (confidence)': lambda t: -t['confidence_seeds']}
    res = dict(runs=a.runs, n_tiles=len(tiles), wrong=int(wrong.sum()), wrong_by_real={s: int(wrong[[t['real'] == s for t in tiles]].sum()) for s in HER2_SCORES},
               seconds_per_tile=dict(plain_and_margin=t_plain / len(tiles), d8=t_d8 / len(tiles)), tiles={})
    for k, f in measures.items():
        u = np.array([f(t) for t in tiles])
        res['tiles'][k] = dict(all=auroc(wrong, u), without_real_3plus=auroc(wrong[not3], u[not3]))

    # a slide
    side = 8
    grid = lambda imgs: np.concatenate([np.concatenate(imgs[r * side:(r + 1) * side], 1) for r in range(side)], 0)
    write_pyramidal_tiff(out/'he.tif', grid(he), mpp=(DEMO_MPP, DEMO_MPP), quality=95)
    virtual, t_slide = [], []
    for g, G in enumerate(gens):
        v = out/f'virtual_{g}.tif'
        t0 = time.perf_counter()
        if not v.exists(): translate_slide(G, out/'he.tif', v, tile=256, overlap=32, progress=False, precision='fp32')
        t_slide.append(time.perf_counter() - t0); virtual.append(v)
    res['slide'] = {}
    regions = []
    for g, v in enumerate(virtual):
        t0 = time.perf_counter(); s1 = score_slide(v, he=out/'he.tif', region=256); t_score = time.perf_counter() - t0
        s2 = score_slide(v, he=out/'he.tif', region=256, others=[w for w in virtual if w != v])
        for r1, r2 in zip(s1.regions, s2.regions):
            i = (r1['y'] // 256) * side + r1['x'] // 256
            regions.append(dict(gen=g, tile=i, real=real[i], virtual=r1['score'], margin=r1['confidence'], both=r2['confidence']))
        res['slide'].setdefault('seconds', []).append(dict(translate=t_slide[g], score_with_margin=t_score))
    w = np.array([r['virtual'] != r['real'] for r in regions]); n3 = np.array([r['real'] != '3+' for r in regions])
    for k in ('margin', 'both'):
        u = -np.array([r[k] for r in regions])
        res['slide'][k] = dict(all=auroc(w, u), without_real_3plus=auroc(w[n3], u[n3]), regions=len(regions), wrong=int(w.sum()))
    (out/'results.json').write_text(json.dumps(res, indent=1))

    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, sub, title in ((axs[0], np.ones(len(tiles), bool), 'all held-out tiles'), (axs[1], not3, 'without the real 3+ tiles')):
        for k, f in measures.items():
            u = np.array([f(t) for t in tiles])[sub]
            fpr, tpr, _ = roc_curve(wrong[sub], u)
            ax.plot(fpr, tpr, label=f"{k} ({auroc(wrong[sub], u):.2f})")
        ax.plot([0, 1], [0, 1], ':', c='grey'); ax.set_title(f'{title}: {int(wrong[sub].sum())} of {int(sub.sum())} scores wrong')
        ax.set_xlabel('right scores flagged unsure'); ax.set_ylabel('wrong scores flagged unsure'); ax.legend(fontsize=8, loc='lower right')
    fig.suptitle(f'Finding wrong virtual HER2 scores: {len(gens)} demo generators (seeds) x 64 held-out tiles (AUROC)')
    fig.tight_layout(); fig.savefig(out/'her2_confidence.jpg', dpi=90, pil_kwargs=dict(quality=85))
    print(json.dumps({k: v for k, v in res.items() if k != 'runs'}, indent=1))


if __name__ == '__main__':
    main()
