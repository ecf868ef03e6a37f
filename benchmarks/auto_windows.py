"""Every tissue window of a slide through float32 and a faster route: how far apart they are, window by window.

Usage:
    python benchmarks/auto_windows.py --slide cmu_small_region.svs (--generator generator.pt | --untrained) [--route openvino]
                                      [--tile 512] [--overlap 64] [--quality 90]

`auto` (`translate_slide(precision='auto')`) checks a sample of the tissue windows (`inference.auto_windows`: one per
8, at most 8, spread over those at least a tenth tissue); this script measures all of them, so that what the sample saw can be set beside what
the slide holds. Per window, PSNR (scikit-image) of the route's translation against float32's:

- `tissue`: as `auto` measures it, as the slide holds it: inside the slide, laid on glass by the tissue mask, over
  the pixels the mask weighs (what `translate_slide` gives `choose_precision` as `written`);
- `raw`: the whole window as the generator made it (what the check measured before it looked at the tissue);
- `on_glass`: the whole window laid on glass (white glass counts as agreement);
- `jpeg`: the whole raw window, both JPEG-encoded and decoded as the slide's tiles are (YCbCr 4:2:0, `--quality`).

Lines of JSON, one per window (`picked`: one of the windows `auto` checks), then the worst and median of each and
how many windows fall below 40 dB. See `auto_check.py` for where to find the CMU sample slide.
"""
import argparse, json
from pathlib import Path
import numpy as np

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--slide', type=Path, required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--generator', type=Path); g.add_argument('--untrained', action='store_true')
    p.add_argument('--route', default='openvino', choices=('openvino', 'bf16'))
    p.add_argument('--tile', type=int, default=512); p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--quality', type=int, default=90)
    a = p.parse_args()
    import imagecodecs, torch
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from he2ihc.runtime import as_generator, apply_generator
    from he2ihc.inference import auto_windows
    from he2ihc.tiles import rgb_to_tensor
    from he2ihc.tiling import window_starts, pad_window
    from he2ihc.wsi import composite_on_glass, open_slide, region_rgb, slide_thumbnail, tissue_mask, soft_tissue_mask, soft_box
    if a.untrained:
        from he2ihc.presets import get_preset, build_generator
        torch.manual_seed(0); G = build_generator(get_preset('ours')).eval()
    else: G = as_generator(a.generator, 'cpu')
    s = open_slide(a.slide); W, H = s.dimensions
    thumb, tds = slide_thumbnail(s, 0, 2048); soft = soft_tissue_mask(tissue_mask(thumb)[0])
    (Ly, ys), (Lx, xs) = window_starts(H, a.tile, a.overlap), window_starts(W, a.tile, a.overlap)
    tissue = [(x, y) for y in ys for x in xs if soft_box(soft, tds, x, y, Lx, Ly).any()]
    picks = set(auto_windows(tissue, {p: float(soft_box(soft, tds, *p, Lx, Ly).mean()) for p in tissue}))
    jpeg = lambda o: imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(np.ascontiguousarray(o), level=a.quality, colorspace='RGB',
                                                                     outcolorspace='YCBCR', subsampling=(2, 2)))
    db = lambda u, v: round(float(psnr(u, v, data_range=255)), 2) if (u != v).any() else float('inf')
    rows = []
    with torch.inference_mode():
        for x, y in tissue:
            h, w = min(Ly, H - y), min(Lx, W - x)
            t = rgb_to_tensor(pad_window(region_rgb(s.read_region((x, y), 0, (w, h))), Ly, Lx))[None]
            f32, fast = [((apply_generator(G, t, 'cpu', r).clamp(-1, 1) + 1) * 127.5).round()[0].permute(1, 2, 0).to(torch.uint8).numpy()
                         for r in ('fp32', a.route)]
            held = [composite_on_glass(np.ascontiguousarray(o[:h, :w]), soft, tds, y, x0=x) for o in (f32, fast)]
            on_tissue = composite_on_glass(np.zeros((h, w, 3), np.uint8), soft, tds, y, x0=x)[..., 0] < 255
            r = dict(x=x, y=y, picked=(x, y) in picks, cover=round(float(soft_box(soft, tds, x, y, Lx, Ly).mean()), 3), tissue_px=int(on_tissue.sum()), tissue=db(held[0][on_tissue], held[1][on_tissue]),
                     raw=db(f32, fast), on_glass=db(*held), jpeg=db(jpeg(f32), jpeg(fast)), max_diff=int(np.abs(f32.astype(int) - fast).max()))
            print(json.dumps(r), flush=True); rows.append(r)
    for k in ('tissue', 'raw', 'on_glass', 'jpeg'):
        v = sorted(r[k] for r in rows)
        print(json.dumps(dict(measure=k, worst=v[0], median=float(np.median(v)), below_40_db=sum(x < 40 for x in v), windows=len(v),
                              picked=[r[k] for r in rows if r['picked']])))

if __name__ == '__main__': main()
