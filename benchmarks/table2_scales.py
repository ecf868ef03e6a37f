"""Table II's question on the demo data, at three magnifications: each Table II row with the demo's recipe, trained by
`he2ihc.demo.train_demo` on one seed's demo dataset, then evaluated on its held-out pairs at the training magnification
and at 0.5x and 2x of it (the tiles resized with Lanczos, H&E and real IHC alike).

    python benchmarks/table2_scales.py OUT --rows asp ours_attention --seeds 0 1 2     # train and evaluate (resumable: done runs are kept)
    python benchmarks/table2_scales.py OUT --summary --seeds 0 1 2                     # OUT/table2_scales.md, .csv and .png, over those seeds

Each run: OUT/ROW/seed-N/ (the demo's run folder) and OUT/ROW/seed-N/scales.json."""
import argparse, json, os, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

ROWS = {   # Table II's rows, each with the demo's recipe (`ours_fast`: L1 x100, a pixel warm-up, random crops, aligned pairs; see RECIPE)
    'asp': dict(ammfi=False),
    'ours_attention': dict(),
    'ours_multimag': dict(ammfi=False, multimag=True, crops_per_tile=1),
    'ours': dict(multimag=True, crops_per_tile=1),
}
RECIPE = dict(lambda_dab=0.)   # the recipe as these rows were measured: before `ours_fast` gained its DAB optical-density term
SCALES = (0.5, 1.0, 2.0)
MEASURES = ('HER2_kappa', 'HER2_acc', 'Membrane_MAE', 'Ring_2plus', 'Ring_3plus', 'psnr', 'ssim')

def resized(path, scale):
    "The RGB image at `path`, resized by `scale` with Lanczos (as it is at 1.0)."
    im = Image.open(path).convert('RGB')
    return im if scale == 1.0 else im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)

def scaled_pairs(pairs, scale, dst):
    "The held-out pairs resized by `scale` (Lanczos), as a MIST-layout folder's val split"
    from he2ihc.data import find_pairs
    for side in ('valA', 'valB'): (dst/side).mkdir(parents=True, exist_ok=True)
    for p in pairs:
        for src, side in ((p.he, 'valA'), (p.ihc, 'valB')): resized(src, scale).save(dst/side/f'{p.name}.png')
    return find_pairs(dst).splits['val']

def run_one(out, row, seed):
    from he2ihc.demo import train_demo, evaluate_translations
    from he2ihc.checkpoints import load_generator
    from he2ihc.data import find_pairs
    run = out/row/f'seed-{seed}'
    done = run/'scales.json'
    if done.exists(): return json.loads(done.read_text())
    t = time.time()
    if not (run/'generator.pt').exists(): train_demo(run, method='ours_fast', seed=seed, progress=False, overwrite=True, log=lambda *a: None, **RECIPE, **ROWS[row])
    train_s = time.time() - t
    G = load_generator(run/'generator.pt')
    held = find_pairs(run/'data').splits['val']
    res = {'row': row, 'seed': seed, 'train_s': train_s}
    with tempfile.TemporaryDirectory() as d:
        for s in SCALES:
            ev = evaluate_translations(G, held if s == 1.0 else scaled_pairs(held, s, Path(d)/str(s)))
            res[str(s)] = {k: ev.get(k) for k in MEASURES}
            print(row, seed, s, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res[str(s)].items()}, flush=True)
    done.write_text(json.dumps(res, indent=1))
    return res

def summary(out, seeds=None):
    import pandas as pd
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    recs = [json.loads(f.read_text()) for f in sorted(out.glob('*/seed-*/scales.json'))]
    recs = [r for r in recs if seeds is None or r['seed'] in seeds]   # (the same seeds for every row)
    rows = [dict(row=r['row'], seed=r['seed'], scale=float(s), **{k: (v if isinstance(v, (int, float)) else np.nan) for k, v in r[s].items()})
            for r in recs for s in map(str, SCALES)]
    df = pd.DataFrame(rows); df.to_csv(out/'table2_scales.csv', index=False)
    order = [r for r in ROWS if r in set(df.row)]
    g = df.groupby(['row', 'scale'])
    lines = ['| Table II row, with the recipe | AMMFI | views | seeds | ' + ' | '.join(f'HER2 kappa at {s:g}x' for s in SCALES) + ' | '
             + ' | '.join(f'ring 3+ at {s:g}x' for s in SCALES) + ' |', '|---|---|---|---|' + '---|' * (2 * len(SCALES))]
    for r in order:
        cells = []
        for k in ('HER2_kappa', 'Ring_3plus'):
            for s in SCALES:
                v = g.get_group((r, s))[k]
                cells.append(f'{v.mean():.3f} ± {v.std(ddof=1):.3f}' if len(v) > 1 else f'{v.mean():.3f}')
        lines.append(f"| {r} | {'no' if ROWS[r].get('ammfi') is False else 'yes'} | {'yes' if ROWS[r].get('multimag') else 'no'} | "
                     f"{', '.join(str(x) for x in sorted(df[df.row == r].seed.unique()))} | " + ' | '.join(cells) + ' |')
    # beside it: HER2 accuracy at each scale, and at the training scale the 3+ tiles read 3+ (the run's own results/metrics.csv)
    lines += ['', '| Table II row, with the recipe | ' + ' | '.join(f'HER2 accuracy at {s:g}x' for s in SCALES)
              + ' | membrane MAE at 1x | share of 3+ read 3+ at 1x, per seed | pathologist\'s reading at 1x, per seed | training (s), per seed |',
              '|---|' + '---|' * (len(SCALES) + 4)]
    for r in order:
        acc = [g.get_group((r, s))['HER2_acc'] for s in SCALES]
        mae = g.get_group((r, 1.0))['Membrane_MAE']
        seeds = sorted(df[df.row == r].seed.unique())
        three = []
        for sd in seeds:
            m = out/r/f'seed-{sd}'/'results'/'metrics.csv'
            rec = pd.read_csv(m).set_index('model').loc['trained'] if m.exists() else None
            three.append(f"{rec['her2_3plus_recall']:.2f}" if rec is not None and rec['her2_3plus_recall'] == rec['her2_3plus_recall'] else 'n/a')
        reading = []
        for sd in seeds:
            m = out/r/f'seed-{sd}'/'results'/'metrics.md'
            line = next((l for l in m.read_text().splitlines() if l.startswith(("A pathologist's reading", 'The verdict, what a pathologist would sign'))), '') if m.exists() else ''
            reading.append('n/a' if not line else 'no' if 'does NOT translate' in line else 'passes')
        secs = [f"{next(x['train_s'] for x in recs if x['row'] == r and x['seed'] == sd):.0f}" for sd in seeds]
        lines.append(f'| {r} | ' + ' | '.join(f'{v.mean():.3f} ± {v.std(ddof=1):.3f}' for v in acc)
                     + f' | {mae.mean():.3f} ± {mae.std(ddof=1):.3f} | ' + ', '.join(three) + ' | ' + ', '.join(reading) + ' | ' + ', '.join(secs) + ' |')
    # the scorer itself at each scale: its reading of the real IHC, resized as above, against the scores the tiles were drawn with
    from he2ihc.data import find_pairs
    from he2ihc.her2 import score_ihc
    from he2ihc.metrics import quadratic_kappa
    from he2ihc.tiles import score_from_name
    real = {s: [] for s in SCALES}
    for sd in sorted(df.seed.unique()):
        data = next((out/r/f'seed-{sd}'/'data' for r in order if (out/r/f'seed-{sd}'/'data').exists()), None)
        if data is None: continue
        held = find_pairs(data).splits['val']
        for s in SCALES:
            truth, read = [], []
            for p in held: truth.append(score_from_name(p.name)); read.append(score_ihc(np.asarray(resized(p.ihc, s))).score)
            real[s].append(quadratic_kappa(truth, read))
    if any(real.values()):
        lines += ['', 'The scorer on the real IHC against the drawn scores, quadratic kappa per seed: '
                  + '; '.join(f"{s:g}x " + ', '.join(f'{k:.3f}' for k in real[s]) for s in SCALES) + '.']
    (out/'table2_scales.md').write_text('\n'.join(lines) + '\n')
    fig, axs = plt.subplots(1, 3, figsize=(13.5, 3.6))
    for ax, k, title in zip(axs, ('HER2_kappa', 'HER2_acc', 'Ring_3plus'), ('HER2 kappa (virtual vs real IHC)', 'HER2 accuracy (virtual vs real IHC)',
                                                                         'ring contrast on 3+ tiles (share of the real)')):
        for i, r in enumerate(order):
            m = [g.get_group((r, s))[k].mean() for s in SCALES]; sd = [g.get_group((r, s))[k].std(ddof=1) for s in SCALES]
            x = np.arange(len(SCALES)) + (i - (len(order) - 1) / 2) * 0.12
            ax.errorbar(x, m, yerr=sd, marker='o', capsize=3, label=r)
            for s_i, s in enumerate(SCALES):
                ax.scatter(np.full(len(g.get_group((r, s))), x[s_i]), g.get_group((r, s))[k], s=8, color='k', alpha=0.4, zorder=3)
        ax.set_xticks(range(len(SCALES))); ax.set_xticklabels([f'{s:g}x' for s in SCALES]); ax.set_xlabel('magnification of the held-out tiles')
        ax.set_title(title, fontsize=10); ax.axhline(0, color='0.8', lw=0.8)
    axs[0].legend(fontsize=8)
    fig.tight_layout(); fig.savefig(out/'table2_scales.png', dpi=90)
    # the zoomed 3+ crop of seed 0 of each row (the last row of its samples.png: H&E, untrained, trained, real IHC)
    crops = {}
    for r in order:
        f = out/r/'seed-0'/'results'/'samples.png'
        if not f.exists(): continue
        im = np.asarray(Image.open(f).convert('RGB'))
        crops[r] = im[int(im.shape[0] * 0.8):]
    if crops:
        fig, axs = plt.subplots(len(crops), 1, figsize=(8.6, 2.3 * len(crops)))
        for ax, (r, im) in zip(np.atleast_1d(axs), crops.items()):
            ax.imshow(im); ax.axis('off'); ax.set_title(f'{r} + recipe, seed 0: the 3+ tile zoomed (H&E, untrained, trained, real IHC)', fontsize=9)
        fig.tight_layout(); fig.savefig(out/'table2_3plus.jpg', dpi=80, pil_kwargs={'quality': 85})
    scale_grid(out, order)
    print((out/'table2_scales.md').read_text())

def scale_grid(out, order, seed=0, scale=0.5):
    "One held-out tile per HER2 score of `seed`, resized by `scale`: the H&E, each row's virtual IHC, the real IHC (OUT/table2_at_SCALE.jpg)."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from he2ihc.checkpoints import load_generator
    from he2ihc.data import find_pairs
    from he2ihc.inference import translate
    from he2ihc.tiles import score_from_name
    runs = {r: out/r/f'seed-{seed}' for r in order if (out/r/f'seed-{seed}'/'generator.pt').exists()}
    if not runs: return
    held = find_pairs(next(iter(runs.values()))/'data').splits['val']
    tiles = {}
    for p in held: tiles.setdefault(score_from_name(p.name), p)
    gens = {r: load_generator(d/'generator.pt') for r, d in runs.items()}
    cols = ['H&E'] + list(gens) + ['real IHC']
    fig, axs = plt.subplots(len(tiles), len(cols), figsize=(1.9 * len(cols), 1.95 * len(tiles)))
    for i, (sc, p) in enumerate(sorted(tiles.items())):
        he = np.asarray(resized(p.he, scale))   # (translated as every evaluation does: `he2ihc.inference.translate`)
        ims = [he] + [translate(G, he, device='cpu') for G in gens.values()] + [np.asarray(resized(p.ihc, scale))]
        for j, im in enumerate(ims):
            axs[i, j].imshow(im); axs[i, j].set_xticks([]); axs[i, j].set_yticks([])
            if i == 0: axs[i, j].set_title(cols[j], fontsize=9)
        axs[i, 0].set_ylabel(f'HER2 {sc}')
    fig.suptitle(f'seed {seed}: held-out tiles at {scale:g}x of the training magnification', fontsize=10)
    fig.tight_layout(); fig.savefig(out/f'table2_at_{scale:g}x.jpg', dpi=80, pil_kwargs={'quality': 85})

if __name__ == '__main__':
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('out'); a.add_argument('--rows', nargs='+', default=list(ROWS)); a.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    a.add_argument('--summary', action='store_true')
    x = a.parse_args(); out = Path(x.out)
    if x.summary: summary(out, x.seeds)
    else:
        for seed in x.seeds:
            for row in x.rows: run_one(out, row, seed)
