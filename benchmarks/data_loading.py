"""Time the data layer: demo-dataset writing, dataset checking, and paired loading into the default device.

Usage: python benchmarks/data_loading.py [--size 1024] [--n 32] [--crop 512] [--out results.json]
Prints one line per figure and writes them as JSON. Not a test: figures depend on the machine.
"""
import argparse, json, os, platform, tempfile, time
from pathlib import Path
import torch
from he2ihc.synthetic import make_demo_dataset
from he2ihc.data import check_pairs, paired_dls

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, default=1024, help="tile side (MIST tiles are 1024)")
    p.add_argument('--n', type=int, default=32, help="training pairs")
    p.add_argument('--crop', type=int, default=512, help="training crop (the paper's 512)")
    p.add_argument('--workers', type=int, nargs='+', default=[0, 4, 8], help="loader processes to compare")
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args()
    res = dict(machine=platform.node(), cpus=os.cpu_count(), torch=torch.__version__,
               gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               size=a.size, n=a.n, crop=a.crop)
    def say(k, v): res[k] = v; print(f"{k}: {v}", flush=True)

    root = Path(tempfile.mkdtemp())
    t = time.perf_counter(); d = make_demo_dataset(root/'demo', n_train=a.n, n_val=2, size=a.size, progress=False)
    say('make_demo_s_per_pair', round((time.perf_counter() - t) / (a.n + 2), 3))
    for nw in (1, min(8, os.cpu_count())):
        t = time.perf_counter(); rep = check_pairs(d, progress=False, n_workers=nw); assert rep.ok, rep
        say(f'check_decode_pairs_per_s_{nw}_threads', round((a.n + 2) / (time.perf_counter() - t), 1))
    for nw in a.workers:
        dls = paired_dls(d, crop_size=a.crop, bs=1, num_workers=nw)
        say('default_device', str(dls.device))
        next(iter(dls.train))                       # start the workers
        t = time.perf_counter(); n = 0
        for he, ihc in dls.train:
            assert he.device == dls.device and he.shape[-1] == a.crop
            n += len(he)
        if dls.device.type == 'cuda': torch.cuda.synchronize()
        say(f'load_pairs_per_s_{nw}_workers', round(n / (time.perf_counter() - t), 1))
    if a.out: a.out.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
