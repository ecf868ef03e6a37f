"""Time whole-slide translation and show that its memory does not grow with the slide.

Usage:
    python benchmarks/slide_inference.py [--sizes 5000x5000 20000x20000] [--tissue 0.25] [--tile 512] [--overlap 64]
                                         [--ngf 4] [--blocks 1] [--tiles 8] [--paper] [--slide-generator tiny|paper] [--precision fp32 auto ...]
                                         [--device cpu] [--out results.json]

Two measurements:

1. Throughput of the generator alone on 512 x 512 windows (`--tile`): windows per second and megapixels per second,
   batch of 1 and of 4, for the tiny generator used for the memory test (ngf `--ngf`, `--blocks` residual blocks) and,
   with `--paper`, the paper's generator (ASP + AMMFI: ngf 64, 6 blocks, spectral norm). Untrained weights: the
   arithmetic, not the result, is what is timed.
2. Whole slides: for each `--sizes` WxH, a synthetic pyramidal H&E slide is written (a 1024-pixel synthetic tissue
   texture repeated inside an ellipse that covers `--tissue` of the slide, 25% by default, glass around it), then translated by
   `translate_slide` with the tiny generator in a fresh process. That process reports its peak resident set size
   (VmHWM from /proc/self/status, which includes torch and OpenSlide), the windows translated, and windows/s and
   megapixels/s end to end (reading, tissue detection, translation, blending, JPEG encoding, pyramid). Peak memory
   should be the same for every slide height; it grows only with the slide's width (one band of window height).

Not a test: figures depend on the machine and on its load (the 1-minute load average is printed with them).
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch

def vm_hwm_mb()->float:
    "Peak resident set size of this process, MB (Linux)."
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    return float('nan')

def tiny_generator(ngf:int, blocks:int):
    from he2ihc.models import ResnetGenerator
    torch.manual_seed(0)
    return ResnetGenerator(ngf=ngf, n_blocks=blocks).eval()

def paper_generator():
    from he2ihc.presets import get_preset, build_generator
    torch.manual_seed(0)
    return build_generator(get_preset('ours')).eval()

def throughput(G, tile:int, bs:int, n:int, device)->dict:
    "Windows/s and Mpx/s of G on random (bs, 3, tile, tile) batches, after one warm-up batch."
    x = torch.rand(bs, 3, tile, tile, device=device) * 2 - 1
    with torch.no_grad():
        G(x)
        if device.type == 'cuda': torch.cuda.synchronize()
        t0 = time.perf_counter(); k = 0
        while k < n:
            G(x); k += bs
        if device.type == 'cuda': torch.cuda.synchronize()
    s = time.perf_counter() - t0
    return dict(batch=bs, windows=k, seconds=round(s, 2), windows_per_s=round(k / s, 3), mpx_per_s=round(k * tile * tile / 1e6 / s, 3))

def write_synthetic_slide(path:Path, width:int, height:int, tissue:float=0.25, mpp:float=0.5, seed:int=0):
    "A WxH pyramidal H&E slide: synthetic tissue texture inside a centred ellipse covering `tissue` of it, glass outside."
    from he2ihc.synthetic import synth_pair
    from he2ihc.wsi import write_pyramidal_tiff
    he, _, _ = synth_pair(2, size=1024, seed=seed, max_shift=0, max_rotation=0, max_warp=0)
    rng = np.random.default_rng(seed)
    glass = np.clip(rng.normal([238, 236, 240], 2.0, (256, 1024, 3)), 0, 255).astype(np.uint8)
    r = np.sqrt(tissue / np.pi)     # semi-axes as fractions of the sides
    xx = (np.arange(width) - width / 2) / (r * width)
    def bands():
        for y in range(0, height, 256):
            h = min(256, height - y)
            ys = (np.arange(y, y + h) - height / 2) / (r * height)
            inside = ys[:, None] ** 2 + xx[None, :] ** 2 < 1
            reps = -(-width // 1024)
            tex = np.tile(he[np.arange(y, y + h) % 1024], (1, reps, 1))[:, :width]
            gl = np.tile(glass[:h], (1, reps, 1))[:, :width]
            yield np.where(inside[..., None], tex, gl)
    write_pyramidal_tiff(path, bands(), (height, width), mpp=(mpp, mpp), quality=85, description='synthetic H&E slide')

def child(args):
    "Translate one slide in this (fresh) process and print a JSON line with its figures."
    from he2ihc.inference import translate_slide
    base = vm_hwm_mb()
    G = paper_generator() if args.slide_generator == 'paper' else tiny_generator(args.ngf, args.blocks)
    import he2ihc.inference   # imports done: what follows is the translation itself
    after_imports = vm_hwm_mb()
    r = translate_slide(G, args.slide, args.out_slide, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
                        device=args.device, precision=args.precision[0], progress=False, overwrite=True)
    print(json.dumps(dict(generator=args.slide_generator, precision=args.precision[0], ran_in=r.precision, setup_s=round(r.setup_seconds, 1), tissue_mpx_per_s=round(r.tissue_megapixels / r.seconds, 4), size=f"{r.size[0]}x{r.size[1]}", windows=r.n_tiles, tissue_windows=r.n_tissue, seconds=round(r.seconds, 1),
                          windows_per_s=round(r.tiles_per_s, 2), mpx_per_s=round(r.megapixels_per_s, 2),
                          rss_start_mb=round(base), rss_after_imports_mb=round(after_imports), peak_rss_mb=round(vm_hwm_mb()))))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', nargs='*', default=['5000x5000', '20000x20000'], help="slides to translate, WxH")
    p.add_argument('--tile', type=int, default=512); p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--ngf', type=int, default=4); p.add_argument('--blocks', type=int, default=1)
    p.add_argument('--tissue', type=float, default=0.25, help="fraction of each slide covered by tissue")
    p.add_argument('--tiles', type=int, default=8, help="windows timed per throughput measurement")
    p.add_argument('--paper', action='store_true', help="also time the paper's full-size generator")
    p.add_argument('--slide-generator', choices=('tiny', 'paper'), default='tiny',
                   help="generator that translates the slides: the tiny one (memory test) or the paper's (throughput on a GPU)")
    p.add_argument('--precision', nargs='+', choices=('fp32', 'bf16', 'fp16', 'openvino', 'auto'), default=['fp32'],
                   help="precision(s) of the slides (auto: translate_slide's choice); several: each slide in each, in turn")
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dir', type=Path, default=None, help="where to write the synthetic slides (default: a temporary folder)")
    p.add_argument('--out', type=Path, default=None, help="write the results as JSON here")
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--slide', type=Path, help=argparse.SUPPRESS); p.add_argument('--out-slide', type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child: return child(args)

    dev = torch.device(args.device)
    info = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(), torch_threads=torch.get_num_threads(),
                device=torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu', load_avg_start=os.getloadavg()[0])
    print(json.dumps(info))
    res = dict(info=info, throughput=[], slides=[])
    gens = [('tiny', tiny_generator(args.ngf, args.blocks))] + ([('paper (ours)', paper_generator())] if args.paper else [])
    for name, G in gens:
        G = G.to(dev)
        for bs in (1, 4):
            r = dict(generator=name, tile=args.tile, **throughput(G, args.tile, bs, args.tiles, dev))
            print(json.dumps(r), flush=True); res['throughput'].append(r)

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for size in args.sizes:
            w, h = map(int, size.lower().split('x'))
            src, dst = Path(d)/f'he_{w}x{h}.tif', Path(d)/f'ihc_{w}x{h}.tif'
            t0 = time.perf_counter(); write_synthetic_slide(src, w, h, args.tissue)
            wrote = time.perf_counter() - t0
            for prec in args.precision:
                out = subprocess.run([sys.executable, __file__, '--child', '--slide', str(src), '--out-slide', str(dst),
                                      '--tile', str(args.tile), '--overlap', str(args.overlap), '--batch-size', str(args.batch_size),
                                      '--ngf', str(args.ngf), '--blocks', str(args.blocks), '--device', args.device,
                                      '--slide-generator', args.slide_generator, '--precision', prec],
                                     capture_output=True, text=True)
                if out.returncode: sys.exit(out.stderr)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r |= dict(source_write_s=round(wrote, 1), source_mb=round(src.stat().st_size / 1e6, 1),
                          output_mb=round(dst.stat().st_size / 1e6, 1), load_avg=os.getloadavg()[0])
                print(json.dumps(r), flush=True); res['slides'].append(r)
                dst.unlink()
            src.unlink()
    if args.out: args.out.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
