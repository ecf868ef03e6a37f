"""Check that a slide region translated by he2ihc with a published generator file equals the reference network applied
window by window.

Usage:
    python benchmarks/published_slide_check.py --asp /path/to/AdaptiveSupervisedPatchNCE --bci /path/to/BCI
        [--slide cmu_small_region.svs] [--at 600 900] [--size 1024] [--ngf 64] [--tile 512] [--overlap 64] [--out check.json]

For each family (ASP's generator; PyramidPix2pix's), a full-size network (`--ngf`, default 64) is built by its
reference's own `define_G` (as `published_fixtures.py` does), given non-trivial state (ASP: spectral-norm vectors
converged by training-mode passes; PyramidPix2pix: batch-norm running statistics from two passes) and saved as its
`save_networks` saves. Then a `--size` region of the slide (level 0) is translated in blended windows
(`he2ihc.tiling.translate_array_tiled`, what `translate_slide` runs per band) twice: with the generator he2ihc reads
from the file (`he2ihc.runtime.as_generator`) and with the reference's own network loaded from the same file, in the
reference's test-time mode (ASP: eval, see below; PyramidPix2pix: training mode with dropout off on both sides, its
dropout drawing noise each pass). Reported: the largest difference of the two 8-bit results and how many pixels
differ. Then `translate_slide` writes the region (as a small pyramidal TIFF at the slide's microns per pixel) with the
published file, every window translated, float32, JPEG quality 100, and its decoded level 0 is compared with the
reference's windows over the same slide (the region as the slide holds it, JPEG-decoded) written the same way (ASP's
family only: translate_slide runs PyramidPix2pix as its test.py does, with dropout on, so each run draws other noise).

ASP's test.py runs its network in training mode (no --eval): each spectral norm takes a power-iteration step per image.
With the converged vectors of a trained network that step is below float32's resolution here; the eval-mode
computation, which he2ihc folds into the weights, is what is compared.
The references are imported from the paths given (see published_fixtures.py) and are not dependencies of he2ihc.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from published_fixtures import references, build_asp, build_bci, read_crop, as_input, save_networks, load_networks, SLIDE, WARMUP_AT  # noqa: E402

def dropout_off(net:nn.Module)->nn.Module:
    for m in net.modules():
        if isinstance(m, nn.Dropout): m.eval()
    return net

def compare(a:np.ndarray, b:np.ndarray)->dict:
    d = np.abs(a.astype(int) - b.astype(int))
    return dict(max_abs_diff=int(d.max()), pixels_differing=int((d.max(-1) > 0).sum()), pixels=int(d.shape[0] * d.shape[1]))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--asp', type=Path, required=True); p.add_argument('--bci', type=Path, required=True)
    p.add_argument('--slide', type=Path, default=SLIDE); p.add_argument('--at', type=int, nargs=2, default=(600, 900))
    p.add_argument('--size', type=int, default=1024); p.add_argument('--ngf', type=int, default=64)
    p.add_argument('--tile', type=int, default=512); p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args()
    from he2ihc.runtime import as_generator
    from he2ihc.tiling import translate_array_tiled
    from he2ihc.inference import translate_slide
    from he2ihc.wsi import write_pyramidal_tiff
    import openslide, tifffile
    torch.manual_seed(0)
    (asp, _), (bci, _) = references(a.asp, a.bci)
    region = read_crop(a.slide, a.at, a.size)
    mpp = float(openslide.OpenSlide(str(a.slide)).properties.get('openslide.mpp-x', 0.5))
    warm = [as_input(read_crop(a.slide, at, 64)) for at in WARMUP_AT]
    tmp = Path(tempfile.mkdtemp())
    report = dict(slide=a.slide.name, at=list(a.at), size=a.size, ngf=a.ngf, tile=a.tile, overlap=a.overlap, torch=torch.__version__, families={})
    for fam, build in (('asp', lambda: build_asp(asp, a.ngf)), ('pix2pix_resnet', lambda: build_bci(bci, a.ngf))):
        net = build().train()
        with torch.no_grad():
            for _ in range(50 if fam == 'asp' else 1):
                for w in warm: net(w)
        f = tmp/f'{fam}_latest_net_G.pth'; save_networks(net, f)
        ref = load_networks(build, f)
        ref = ref.eval() if fam == 'asp' else dropout_off(ref.train())
        G = as_generator(f)
        if fam != 'asp': dropout_off(G)
        kw = dict(tile=a.tile, overlap=a.overlap, batch_size=1, device='cpu', precision='fp32')
        t0 = time.perf_counter(); mine = translate_array_tiled(G, region, **kw); t_he = time.perf_counter() - t0
        t0 = time.perf_counter(); theirs = translate_array_tiled(ref, region, **kw); t_ref = time.perf_counter() - t0
        r = dict(windows=compare(mine, theirs), seconds=dict(he2ihc=round(t_he, 2), reference=round(t_ref, 2)))
        report['families'][fam] = r
        if fam != 'asp':   # translate_slide runs it as its test.py does, dropout on: each pass draws other noise
            r['slide'] = "not compared: translate_slide runs PyramidPix2pix with dropout on, as its test.py does"; print(fam, json.dumps(r)); continue
        # the slide path: the region as a small slide, translated by translate_slide with the published file
        src = tmp/f'{fam}_region.tif'; write_pyramidal_tiff(src, region, mpp=(mpp, mpp), quality=100)
        out = translate_slide(f, src, tmp/f'{fam}_virtual.tif', tile=a.tile, overlap=a.overlap, batch_size=1,
                              precision='fp32', detect_tissue=False, quality=100, progress=False)
        with tifffile.TiffFile(out.path) as t: level0 = t.pages[0].asarray()
        with tifffile.TiffFile(src) as t: region_read = t.pages[0].asarray()   # (the slide holds the region as JPEG: what both see)
        theirs_read = translate_array_tiled(ref, region_read, **kw)
        jpeg = tmp/f'{fam}_ref.tif'; write_pyramidal_tiff(jpeg, theirs_read, mpp=(mpp, mpp), quality=100)
        with tifffile.TiffFile(jpeg) as t: theirs_jpeg = t.pages[0].asarray()
        r['slide'] = dict(against_reference_written_alike=compare(level0, theirs_jpeg), jpeg_of_the_reference=compare(theirs_jpeg, theirs_read))
        report['families'][fam] = r
        print(fam, json.dumps(r))
    if a.out: a.out.write_text(json.dumps(report, indent=1) + '\n')

if __name__ == '__main__': main()
