"""CPU inference routes for the paper's generator: float32 (NNPACK and oneDNN convolutions), bf16 autocast, bf16 autocast
with channels-last, and the OpenVINO graph (bf16 where the CPU has it natively, and float32); seconds per window, interleaved, and each route's output PSNR against float32.

Usage: python benchmarks/cpu_precision.py [--method ours] [--tile 512] [--rounds 3] [--generator FILE] [--out cpu.json]

The routes are timed in turns (one window each per round), so a busy machine slows them alike and the ratios hold.
PSNR is measured on a synthetic H&E tile through the generator given (default: the method's untrained generator,
with the reference initialisation). Not a test: figures depend on the CPU (bf16 is native only with AVX512-BF16 or AMX).
"""
import argparse, contextlib, json, platform, time
from pathlib import Path
import numpy as np, torch
from he2ihc.presets import build_generator, get_preset
from he2ihc.models import fast_cpu_convs
from he2ihc.runtime import as_generator, cpu_has_native_bf16, openvino_available, OpenVINOGenerator
from he2ihc.synthetic import synth_pair
from he2ihc.metrics import psnr

ROUTES = {'fp32 (NNPACK)': ('fp32', True, False), 'fp32 (oneDNN)': ('fp32', False, False),
          'bf16': ('bf16', False, False), 'bf16, channels-last': ('bf16', False, True),
          'OpenVINO (bf16)': ('ov-bf16', False, False), 'OpenVINO (f32)': ('ov-f32', False, False)}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--method', default='ours'); p.add_argument('--tile', type=int, default=512)
    p.add_argument('--rounds', type=int, default=3); p.add_argument('--generator', type=Path, default=None)
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    G = as_generator(a.generator, 'cpu') if a.generator else build_generator(get_preset(a.method)).eval()
    he = synth_pair(2, size=a.tile, seed=3, max_shift=0, max_rotation=0, max_warp=0)[0]
    x = torch.from_numpy(he).permute(2, 0, 1)[None].float() / 127.5 - 1
    def copy_of(g, cl):     # a separate module per route (switching one module's memory format back and forth costs reorders)
        h = build_generator(get_preset(a.method)).eval() if not a.generator else as_generator(a.generator, 'cpu')
        h.load_state_dict(g.state_dict())
        return h.to(memory_format=torch.channels_last) if cl else h
    routes = {k: v for k, v in ROUTES.items() if not v[0].startswith('ov') or openvino_available()}
    nets = {k: copy_of(G, cl) for k, (_, _, cl) in routes.items()}
    convert = {}
    for k, (prec, _, _) in routes.items():
        if prec.startswith('ov'):
            t = time.perf_counter()
            nets[k] = OpenVINOGenerator(nets[k], precision=prec[3:]); nets[k].graph(a.tile, a.tile)
            convert[k] = time.perf_counter() - t
    times = {k: [] for k in routes}
    outs = {}
    with torch.inference_mode():
        for r in range(a.rounds + 1):          # round 0 warms up
            for k, (prec, nnpack, cl) in routes.items():
                Gk, xk = nets[k], x.contiguous(memory_format=torch.channels_last) if cl else x
                with fast_cpu_convs(nnpack), torch.autocast('cpu', dtype=torch.bfloat16, enabled=prec == 'bf16'):
                    t = time.perf_counter(); y = Gk(xk); dt = time.perf_counter() - t
                if r: times[k].append(dt)
                outs[k] = y.float().clamp(-1, 1)
    ref = outs['fp32 (oneDNN)']
    rows = [dict(route=k, s_per_window=float(np.median(v)), mpx_per_s=a.tile ** 2 / 1e6 / float(np.median(v)),
                 psnr_vs_fp32=float(psnr(outs[k], ref)) if k != 'fp32 (oneDNN)' else float('inf')) for k, v in times.items()]
    base = rows[0]['s_per_window']
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    print(f"{cpu}; {torch.get_num_threads()} threads; native bf16: {cpu_has_native_bf16()}; {a.method} generator"
          f"{' ' + str(a.generator) if a.generator else ' (untrained)'}; {a.tile}x{a.tile} window, median of {a.rounds}")
    print('| route | s per window | Mpx/s | speed-up over fp32 (NNPACK) | PSNR vs fp32 (dB) |\n|---|---|---|---|---|')
    for r in rows: print(f"| {r['route']} | {r['s_per_window']:.2f} | {r['mpx_per_s']:.3f} | {base / r['s_per_window']:.2f} | {r['psnr_vs_fp32']:.1f} |")
    for k, t in convert.items(): print(f"{k}: converted and compiled in {t:.1f} s (once per window shape)")
    if a.out: a.out.write_text(json.dumps(dict(cpu=cpu, threads=torch.get_num_threads(), rows=rows, convert_s=convert), indent=1))

if __name__ == '__main__': main()
