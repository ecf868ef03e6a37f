"""The demo with other settings: `he2ihc.demo.train_demo` on one seed's demo dataset with preset overrides, judged by the
demo's verdict, with the darkness of the virtual brown grade by grade (the 99th percentile of each held-out tile's DAB
optical density, `he2ihc.metrics.dab_od`, mean over the tiles of a grade, virtual / real).

    python benchmarks/demo_schedules.py OUT/half-s0 --seed 0 --threads 1 --set iterations=1024 dab_pool=2
    python benchmarks/demo_schedules.py OUT/warm18-s1 --seed 1 --threads 1 --set n_epochs=14 n_epochs_decay=8 warmup_epochs=18

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

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out', help="the run's folder (replaced)")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help="train_demo / preset overrides, e.g. iterations=1024 dab_pool=2")
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
    out, t, ends = Path(a.out), time.time(), []
    def log(*msg):   # train_demo's lines: the first starts the training, then one as each epoch ends
        ends.append(time.perf_counter())
    r = train_demo(out, seed=a.seed, progress=False, overwrite=True, log=log, **over)
    ok, why = demo_verdict(r['results'])
    G, p99 = load_generator(out/'generator.pt'), {}
    for p in find_pairs(out/'data').splits['val']:
        he, ihc = np.asarray(load_rgb(p.he)), np.asarray(load_rgb(p.ihc))
        p99.setdefault(score_from_name(p.name), []).append((np.percentile(dab_od(translate(G, he)), 99), np.percentile(dab_od(ihc), 99)))
    tr = r['results']['trained']
    line = dict(out=str(out), seed=a.seed, settings=over, passes=ok, train_min=round(r['train_seconds'] / 60, 1), min=round((time.time() - t) / 60, 1),
                **{k: round(tr[k], 3) for k in ('HER2_kappa', 'HER2_acc', 'HER2_3plus_recall', 'Membrane_MAE', 'Ring_2plus', 'Ring_3plus')},
                epoch_s=[round(b - e, 1) for e, b in zip(ends, ends[1:])],
                dab_p99={k: '%.2f / %.2f' % tuple(np.mean(v, 0)) for k, v in sorted(p99.items())}, verdict=why)
    print(json.dumps(line), flush=True)
    with open(out.parent/'schedules.jsonl', 'a') as f: f.write(json.dumps(line) + '\n')

if __name__ == '__main__': main()
