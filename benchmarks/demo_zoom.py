"""The zoomed 3+ crop of `he2ihc.demo.sample_rows` (the first held-out 3+ tile, the 64-pixel window where its real IHC
holds the most DAB) as several demo runs translate it: one row per seed, one column per run.

    python benchmarks/demo_zoom.py OUT.jpg --rows "seed 0" "seed 1" --cols "22 + 2" "+ DAB-weighted" \\
        --runs RUNS/w22_s0 RUNS/ring_s0 RUNS/w22_s1 RUNS/ring_s1

The runs of one row must share a seed (so their demo datasets, and the tile, are one); H&E and real IHC are added."""
import argparse
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out', help='the figure (.jpg or .png)')
    ap.add_argument('--rows', nargs='+', required=True, help='a label per row')
    ap.add_argument('--cols', nargs='+', required=True, help='a label per run column')
    ap.add_argument('--runs', nargs='+', required=True, help='run folders (generator.pt, data/), row by row')
    ap.add_argument('--zoom', type=int, default=64)
    a = ap.parse_args()
    if len(a.runs) != len(a.rows) * len(a.cols): ap.error(f"{len(a.rows)} rows x {len(a.cols)} columns need {len(a.rows) * len(a.cols)} runs, got {len(a.runs)}")
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from he2ihc.demo import sample_rows
    from he2ihc.tiles import load_rgb, rgb_to_tensor, score_from_name
    from he2ihc.data import find_pairs
    from he2ihc.checkpoints import load_generator
    class Held:   # what `sample_rows` reads of a validation dataset: its pairs, and each as (H&E, IHC) tensors
        def __init__(self, pairs): self.pairs = pairs
        def __getitem__(self, i): return tuple(rgb_to_tensor(load_rgb(f)) for f in (self.pairs[i].he, self.pairs[i].ihc))
    titles = ['H&E input', *a.cols, 'real IHC']
    fig, axs = plt.subplots(len(a.rows), len(titles), figsize=(2.2 * len(titles), 2.3 * len(a.rows)), squeeze=False)
    for r, label in enumerate(a.rows):
        runs = [Path(x) for x in a.runs[r * len(a.cols):(r + 1) * len(a.cols)]]
        p = next(q for q in find_pairs(runs[0]/'data').splits['val'] if score_from_name(q.name) == '3+')
        models = {c: load_generator(run/'generator.pt') for c, run in zip(a.cols, runs)}
        _, ims = sample_rows(models, Held([p]), zoom=a.zoom)[-1]   # (the last row: the zoomed crop)
        for c, im in enumerate(ims):
            ax = axs[r, c]; ax.imshow(im, interpolation='nearest'); ax.set_xticks([]); ax.set_yticks([])
            if r == 0: ax.set_title(titles[c], fontsize=9)
        axs[r, 0].set_ylabel(f'{label}, {p.name}', fontsize=9)
    fig.tight_layout(); fig.savefig(a.out, dpi=80, **({'pil_kwargs': {'quality': 80}} if a.out.endswith('.jpg') else {})); plt.close(fig)

if __name__ == '__main__': main()
