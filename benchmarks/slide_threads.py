"""How whole-slide translation scales with the CPU threads of its reading, pyramid and JPEG side (`translate_slide(threads=N)`).

Usage:
    python benchmarks/slide_threads.py [--sizes 4096x4096] [--tissue 0.5] [--all-tiles] [--generator identity|tiny|paper]
                                       [--precision fp32 ...] [--threads 1 2] [--rounds 3] [--pin] [--batch-size 8]
                                       [--alone] [--slides 0] [--device cpu] [--dir DIR] [--out results.json]

Each run translates a synthetic pyramidal H&E slide (`slide_inference.write_synthetic_slide`: a tissue texture inside an
ellipse covering `--tissue` of the slide, glass around it) in a fresh process, which reports the whole call's seconds,
megapixels per second of the slide and of its tissue, and its peak resident memory (VmHWM: torch, OpenSlide and
everything else included). Runs are interleaved: round 1 runs every (size, precision, threads) once, then round 2, so
a change in the machine's load spreads over all of them rather than landing on one setting. Every output of a setting
is checked to be the same file, byte for byte, as the same slide's output with the first number of threads.

Generators: `identity` (`nn.Identity()`: what is timed is the CPU side alone, what a fast GPU waits for), `tiny`
(ResNet generator, ngf 4, one block) and `paper` (the paper's generator, ASP + AMMFI, untrained weights: the
arithmetic, not the result, is timed). Precisions: those of `translate_slide` (fp32, bf16, fp16, openvino, auto), and
`compile` / `compile-bf16`: the generator wrapped in `torch.compile` and run in fp32 / bf16 autocast.

`--alone` also times the generator alone on random windows of the slide's tile size, per precision (batch
`--batch-size`). `--slides N` also times `translate_slides` (a local Dask cluster, default workers) over N copies of
the first size, at the largest number of threads, for fp32 and bf16 (a generator file; compiled modules do not travel to workers).

`benchmarks/gpu_slide.sh` runs this on a GPU machine. Not a test: figures depend on the machine and its load.
"""
import argparse, hashlib, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from slide_inference import write_synthetic_slide, vm_hwm_mb   # noqa: E402

def generator_preset(name:str):
    "The preset a named generator is built from (None for the identity)."
    from he2ihc.presets import Preset, get_preset
    return None if name == 'identity' else Preset('asp', ngf=4, g_blocks=1) if name == 'tiny' else get_preset('ours')

def make_generator(name:str):
    import torch
    from torch import nn
    from he2ihc.presets import build_generator
    if name == 'identity': return nn.Identity()
    torch.manual_seed(0)
    return build_generator(generator_preset(name)).eval()

def split_precision(p:str)->tuple:
    "(compile?, the precision translate_slide runs in)"
    return (True, 'bf16' if p == 'compile-bf16' else 'fp32') if p.startswith('compile') else (False, p)

def child(a):
    "One translation in this fresh process; prints a JSON line."
    import torch
    from he2ihc.inference import translate_slide
    G = make_generator(a.generator)
    compiled, prec = split_precision(a.precision[0])
    dev = torch.device(a.device)
    if not isinstance(G, torch.nn.Identity): G = G.to(dev)
    if compiled: G = torch.compile(G)
    r = translate_slide(G, a.slide, a.out_slide, tile=a.tile, overlap=a.overlap, batch_size=a.batch_size, device=dev,
                        precision=prec, progress=False, overwrite=True, detect_tissue=not a.all_tiles, threads=a.threads[0])
    print(json.dumps(dict(torch_threads=torch.get_num_threads(), cores=len(os.sched_getaffinity(0)), seconds=round(r.seconds, 2), setup_s=round(r.setup_seconds, 2), ran_in=r.precision,
                          mpx_per_s=round(r.megapixels_per_s, 3), tissue_mpx_per_s=round(r.tissue_megapixels / r.seconds, 3),
                          windows=r.n_tiles, translated=r.n_tissue, peak_rss_mb=round(vm_hwm_mb()),
                          sha256=hashlib.sha256(Path(a.out_slide).read_bytes()).hexdigest()[:16])))

def run_child(a, slide, out, prec, threads)->dict:
    cmd = [sys.executable, __file__, '--child', '--slide', str(slide), '--out-slide', str(out), '--generator', a.generator,
           '--precision', prec, '--threads', str(threads), '--tile', str(a.tile), '--overlap', str(a.overlap),
           '--batch-size', str(a.batch_size), '--device', a.device] + (['--all-tiles'] if a.all_tiles else [])
    env = None
    if a.pin:      # this run on its first `threads` cores alone, torch's threads as many
        cores = sorted(os.sched_getaffinity(0))[:threads]
        cmd = ['taskset', '-c', ','.join(map(str, cores))] + cmd
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode: sys.exit(f"child failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])

def alone(a, dev)->list:
    "The generator alone, per precision: windows/s and Mpx/s on random windows."
    import torch
    from he2ihc.runtime import apply_generator
    out = []
    for p in a.precision:
        compiled, prec = split_precision(p)
        if prec in ('auto', 'openvino'): continue
        G = make_generator(a.generator).to(dev)
        if compiled: G = torch.compile(G)
        x = torch.rand(a.batch_size, 3, a.tile, a.tile, device=dev) * 2 - 1
        with torch.inference_mode():
            apply_generator(G, x, dev, prec)            # warm-up (and compilation)
            if dev.type == 'cuda': torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
            while n < a.alone_windows:
                apply_generator(G, x, dev, prec); n += a.batch_size
            if dev.type == 'cuda': torch.cuda.synchronize()
        s = time.perf_counter() - t0
        r = dict(kind='alone', precision=p, batch=a.batch_size, windows_per_s=round(n / s, 2),
                 mpx_per_s=round(n * a.tile * a.tile / 1e6 / s, 2))
        print(json.dumps(r), flush=True); out.append(r)
    return out

def many(a, d:Path, src:Path, dev)->list:
    "translate_slides over `--slides` copies of `src`, per precision (fp32, bf16 of those asked) and number of threads."
    import torch
    from he2ihc.slides import translate_slides
    from he2ihc.checkpoints import save_generator
    folder = d/'many'; folder.mkdir()
    for k in range(a.slides): shutil.copy(src, folder/f"slide{k}.tif")
    G = make_generator(a.generator)
    if isinstance(G, torch.nn.Identity): return []
    gfile = d/'generator.pt'; save_generator(G, generator_preset(a.generator), gfile)
    out = []
    for p in [p for p in a.precision if p in ('fp32', 'bf16')]:
        for t in [max(a.threads)]:
            dst = d/f"many_out_{p}_{t}"
            t0 = time.perf_counter()
            r = translate_slides(gfile, folder, dst, threads_per_worker=t, her2=False, progress=False, tile=a.tile,
                                 overlap=a.overlap, batch_size=a.batch_size, precision=p, detect_tissue=not a.all_tiles)
            s = time.perf_counter() - t0
            px = sum(int(row['width']) * int(row['height']) for row in r.rows if row['status'] == 'written')
            tissue = sum(float(row['tissue_mpx']) for row in r.rows if row['status'] == 'written')
            res = dict(kind='translate_slides', precision=p, threads=t, slides=r.count('written'), seconds=round(s, 1),
                       mpx_per_s=round(px / 1e6 / s, 2), tissue_mpx_per_s=round(tissue / s, 2))
            print(json.dumps(res), flush=True); out.append(res)
            shutil.rmtree(dst)
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', nargs='+', default=['4096x4096'], help="slides, WxH")
    p.add_argument('--tissue', type=float, default=0.5, help="share of each slide covered by tissue")
    p.add_argument('--all-tiles', action='store_true', help="translate every window (no tissue detection)")
    p.add_argument('--generator', choices=('identity', 'tiny', 'paper'), default='identity')
    p.add_argument('--precision', nargs='+', default=['fp32'],
                   choices=('fp32', 'bf16', 'fp16', 'openvino', 'auto', 'compile', 'compile-bf16'))
    p.add_argument('--threads', nargs='+', type=int, default=[1, 2])
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--pin', action='store_true', help="run each translation on as many cores as its threads (taskset), torch threads too: "
                                                      "how it scales with cores rather than with threads on the same cores")
    p.add_argument('--tile', type=int, default=512); p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--alone', action='store_true', help="also time the generator alone")
    p.add_argument('--alone-windows', type=int, default=64, help="windows timed per precision, generator alone")
    p.add_argument('--slides', type=int, default=0, help="also time translate_slides over this many slides")
    p.add_argument('--device', default=None)
    p.add_argument('--dir', type=Path, default=None, help="where the synthetic slides go (default: a temporary folder)")
    p.add_argument('--out', type=Path, default=None, help="write the results as JSON here")
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--slide', type=Path, help=argparse.SUPPRESS); p.add_argument('--out-slide', type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    import torch
    a.device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if a.child: return child(a)
    dev = torch.device(a.device)
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    flags = next((l.split(':', 1)[1].split() for l in open('/proc/cpuinfo') if l.startswith('flags')), [])
    info = dict(cpu=cpu, cores=len(os.sched_getaffinity(0)), avx512=('avx512f' in flags), avx512_bf16=('avx512_bf16' in flags),
                amx=('amx_bf16' in flags), device=torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu',
                torch=torch.__version__, load_avg_start=os.getloadavg()[0], generator=a.generator, tissue=a.tissue,
                all_tiles=a.all_tiles, batch_size=a.batch_size, tile=a.tile, overlap=a.overlap)
    print(json.dumps(info), flush=True)
    res = dict(info=info, alone=alone(a, dev) if a.alone else [], slides=[], many=[])
    d = Path(tempfile.mkdtemp(dir=a.dir))
    if not (a.rounds or a.slides): a.sizes = []
    try:
        srcs = {}
        for size in a.sizes:
            w, h = map(int, size.lower().split('x'))
            srcs[size] = d/f"he_{w}x{h}.tif"; write_synthetic_slide(srcs[size], w, h, a.tissue)
        first = {}
        for rnd in range(a.rounds):
            for size, src in srcs.items():
                for prec in a.precision:
                    for t in a.threads:
                        r = run_child(a, src, d/'out.tif', prec, t)
                        same = first.setdefault((size, prec), r['sha256']) == r['sha256']
                        r = dict(round=rnd, size=size, precision=prec, threads=t, same_bytes_as_first=same, **r,
                                 load_avg=os.getloadavg()[0])
                        print(json.dumps(r), flush=True); res['slides'].append(r)
                        if not same: sys.exit(f"{size} {prec}: the output with {t} threads differs from the first's")
        if a.slides: res['many'] = many(a, d, next(iter(srcs.values())), dev)
    finally: shutil.rmtree(d, ignore_errors=True)
    # one line per setting: the median over rounds
    import statistics as st
    if res['slides']: print("\n| size | precision | threads | Mpx/s (median) | tissue Mpx/s | peak RSS MB (max) | runs |\n|---|---|---|---|---|---|---|")
    for size in a.sizes if res['slides'] else []:
        for prec in a.precision:
            for t in a.threads:
                rs = [r for r in res['slides'] if (r['size'], r['precision'], r['threads']) == (size, prec, t)]
                print(f"| {size} | {prec} | {t} | {st.median(r['mpx_per_s'] for r in rs):.2f} | "
                      f"{st.median(r['tissue_mpx_per_s'] for r in rs):.3f} | {max(r['peak_rss_mb'] for r in rs)} | "
                      f"{', '.join(str(r['mpx_per_s']) for r in rs)} |")
    if a.out: a.out.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
