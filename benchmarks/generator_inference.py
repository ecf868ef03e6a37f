"""Generator inference throughput: megapixels per second of the asp and ours generators translating tiles.

Usage: python benchmarks/generator_inference.py [--tile 1024] [--bs 4] [--iters 5] [--precisions fp32 bf16]
                                               [--cpu-convs nnpack onednn] [--out inf.json]

Times a plain forward pass of the ResNet generator (eval mode, no gradients) over batches of tiles, which is the work
a whole-slide translation does per tile (reading, stitching and writing are left out; see slide_inference.py).
bf16 runs under autocast with channels-last weights and tiles. On a CPU, `--cpu-convs nnpack onednn` times float32 with
NNPACK's convolutions (he2ihc's default on AVX2 CPUs) and with PyTorch's default ones. Not a test: figures depend on the
machine.
"""
import argparse, contextlib, json, os, platform, time
from pathlib import Path
import torch
from he2ihc.presets import build_generator, get_preset
from he2ihc.models import fast_cpu_convs

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=['asp', 'ours'])
    p.add_argument('--tile', type=int, default=1024)
    p.add_argument('--bs', type=int, default=None, help="tiles per batch (default: 4 on a GPU, 1 on a CPU)")
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--precisions', nargs='+', default=None, help="default: fp32 bf16 on a GPU, fp32 on a CPU")
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cpu-convs', nargs='+', default=['nnpack'], choices=['nnpack', 'onednn'],
                   help="CPU float32 convolutions: NNPACK's (the default) and/or PyTorch's default oneDNN ones")
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args(argv)
    dev = torch.device(a.device); cuda = dev.type == 'cuda'
    bs = a.bs or (4 if cuda else 1)
    precs = a.precisions or (['fp32', 'bf16'] if cuda else ['fp32'])
    name = torch.cuda.get_device_name(0) if cuda else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    rows = []
    for m in a.methods:
        G = build_generator(get_preset(m)).to(dev).eval()
        x = torch.rand(bs, 3, a.tile, a.tile, device=dev) * 2 - 1
        for prec, convs in [(pr, c) for pr in precs for c in (a.cpu_convs if not cuda and pr == 'fp32' else ['-'])]:
            cl = prec != 'fp32'
            Gp, xp = (G.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)) if cl else (G, x)
            ac = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == 'bf16')
            with torch.inference_mode(), ac, (fast_cpu_convs(False) if convs == 'onednn' else contextlib.nullcontext()):
                Gp(xp)
                if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                for _ in range(a.iters): Gp(xp)
                if cuda: torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / a.iters
            r = dict(device=name, method=m, tile=a.tile, bs=bs, precision=prec, cpu_convs=convs, s_per_batch=dt,
                     megapixels_per_s=bs * a.tile ** 2 / 1e6 / dt, loadavg=os.getloadavg()[0],
                     peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)
            rows.append(r)
            print(f"{m} {prec}{'' if convs == '-' else ' ' + convs}: {r['megapixels_per_s']:.3f} megapixels/s ({bs} tiles of {a.tile}x{a.tile} in {dt:.3f} s) on {name}", flush=True)
    if a.out: a.out.write_text(json.dumps(rows, indent=1))
    return rows

if __name__ == '__main__': main()
