"""Check that he2ihc's `asp` training step computes the public ASP step's numbers, from the same weights and inputs.

Usage:
    python benchmarks/reference_equivalence.py --reference /path/to/AdaptiveSupervisedPatchNCE [--size 128] [--double] [--out eq.json]

Both sides are built for the `asp` method: the reference's CPTModel with the options of its MIST launcher (the
`ReferenceStep` of benchmarks/reference_step.py, which also makes its Gaussian pyramid run on a CPU) and he2ihc's
`stain_learner(dls, 'asp')` with its `StainTrainer`. The reference is initialised as its train.py does
(`data_dependent_initialize`, which also creates netF's MLPs); its netG, netD and netF state (weights, biases, blur
filters and the spectral-norm vectors u and v, `weight_orig/_u/_v` there, `parametrizations.weight.original/_u/_v`
here) are then copied into he2ihc's networks. Both get the same synthetic (H&E, IHC) pair from
`he2ihc.synthetic.synth_pair` in [-1, 1], the same PatchNCE locations (the two draws of a step, NCE then ASP, are fixed
in advance and handed to each side's PatchSampleF), and the same epoch for the ASP schedule (default 35, in the decay
phase, where the adaptive weights are not uniform). One optimisation step runs on each side: the reference's
`CPTModel.optimize_parameters()` and one he2ihc training batch (`StainLearner._do_one_batch`, what `Learner.fit` runs).

Reported: every loss term on each side and their relative difference; per network (G, D, F) the relative difference
norm(g_he2ihc - g_ref) / norm(g_ref) of the gradients left by the step, over all its parameters and the largest per
parameter tensor; and the same for the weight updates of the step. Targets: 1e-4 for losses, 1e-3 for gradients.

Options that separate the sources of a difference (diagnostics only: he2ihc's code is never changed):
  --double         run both sides in float64 (rounding differences shrink to ~1e-12; what remains is real)
  --sn exact       set every spectral-norm u, v to the exact top singular vectors (SVD) before the step, so the number
                   and order of power iterations no longer matters until a weight changes
  --ref-normalize  give he2ihc's PatchSampleF the reference's L2 normalisation, sqrt(sum((x + 1e-7)^2)), at run time
                   (he2ihc has used that formula since this comparison found the difference: now a no-op)
  --ref-power-iteration  give he2ihc's spectral norm the reference's power-iteration order (v from u, then u from v)
The reference's checkout is used as it is; its code is imported from --reference and is not copied into he2ihc.
If OpenCV is not installed, an empty `cv2` module stands in for it (the reference's util/util.py imports it for a
colour function training does not use).
"""
import argparse, json, platform, subprocess, sys, tempfile, types, warnings
from pathlib import Path
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_step import ReferenceStep, MIST_OPTIONS   # noqa: E402

LOSS_TARGET, GRAD_TARGET = 1e-4, 1e-3
TERMS = ('G_GAN', 'NCE', 'ASP', 'GP', 'G', 'D_real', 'D_fake', 'D')

# --- the two sides -------------------------------------------------------------------------------------------------
def fixed_pair(size, score=2, seed=0, dtype=torch.float32):
    "One synthetic (H&E, IHC) pair as (1, 3, size, size) tensors in [-1, 1]."
    from he2ihc.synthetic import synth_pair
    from he2ihc.tiles import rgb_to_tensor
    he, ihc, _ = synth_pair(score, size=size, seed=seed)
    return rgb_to_tensor(he)[None].to(dtype), rgb_to_tensor(ihc)[None].to(dtype)

def build_reference(checkout, size, double):
    try: import cv2  # noqa: F401
    except ImportError: sys.modules['cv2'] = types.ModuleType('cv2')   # only util.util's colour transfer uses it
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='To copy construct from a tensor')
        ref = ReferenceStep(checkout, size=size, bs=1)   # CPTModel + data_dependent_initialize, seed 0
    m = ref.model
    if double:
        for mod in (m.netG, m.netD, m.netF, m.criterionGAN): mod.double()   # same Parameter objects: optimisers keep them
        m.P.kernel = m.P.kernel.double()
    return ref

def KeepGrads():
    "A callback that keeps each network's gradients as its optimiser steps; `restore()` puts them back in `.grad` (fastai clears them)."
    from fastai.callback.core import Callback
    class _KeepGrads(Callback):
        order = 70
        def after_pred(self): self.kept = {q: q.grad.clone() for q in self.learn.model.D.parameters() if q.grad is not None}
        def before_step(self):
            self.kept |= {q: q.grad.clone() for m in (self.learn.model.G, self.learn.model.F) for q in m.parameters() if q.grad is not None}
        def restore(self):
            for q, g in self.kept.items(): q.grad = g
    return _KeepGrads()

def build_he2ihc(he, ihc, epoch, double):
    "he2ihc's learner for 'asp' on a one-pair in-memory dataset, set up as Learner.fit does before a training batch."
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from he2ihc.train import stain_learner
    size = he.shape[-1]
    dl = DataLoader([(he[0], ihc[0])], bs=1)
    learn = stain_learner(DataLoaders(dl, dl, device='cpu'), 'asp', crop_size=size, seed=0)
    if double: learn.model.double()
    learn.create_opt(); learn.model.train()
    learn.epoch, learn.iter, learn.training = epoch - 1, 0, True   # fastai counts epochs from 0, the trainer adds 1
    learn.stain_trainer.before_fit()                  # creates the discriminator's optimiser
    return learn

# --- state mapping ------------------------------------------------------------------------------------------------
def _role(key):
    "What a state entry is, independent of the naming of either side."
    for suffix, role in (('weight_orig', 'weight'), ('parametrizations.weight.original', 'weight'), ('weight_u', 'u'),
                         ('parametrizations.weight.0._u', 'u'), ('weight_v', 'v'), ('parametrizations.weight.0._v', 'v'),
                         ('weight', 'weight'), ('bias', 'bias'), ('filt', 'filt')):
        if key.endswith(suffix): return role
    raise KeyError(key)

def state_pairs(ref_mod, he_mod):
    "[(ref key, he2ihc key)] of two networks' state dicts, matched in order and checked by role and shape."
    a, b = ref_mod.state_dict(), he_mod.state_dict()
    if len(a) != len(b): raise SystemExit(f"state dicts differ in length: {len(a)} vs {len(b)}")
    pairs = list(zip(a, b))
    for ka, kb in pairs:
        if _role(ka) != _role(kb) or a[ka].shape != b[kb].shape:
            raise SystemExit(f"cannot map {ka} {tuple(a[ka].shape)} to {kb} {tuple(b[kb].shape)}")
    return pairs

def param_pairs(ref_mod, he_mod):
    "[(name, ref parameter, he2ihc parameter)] in order, checked by shape."
    a, b = list(ref_mod.named_parameters()), list(he_mod.named_parameters())
    if len(a) != len(b): raise SystemExit(f"parameter lists differ in length: {len(a)} vs {len(b)}")
    for (na, pa), (nb, pb) in zip(a, b):
        if pa.shape != pb.shape or _role(na) != _role(nb): raise SystemExit(f"cannot pair {na} with {nb}")
    return [(na, pa, pb) for (na, pa), (_, pb) in zip(a, b)]

def copy_state(ref_mod, he_mod):
    sa, sb = ref_mod.state_dict(), he_mod.state_dict()
    with torch.no_grad():
        for ka, kb in state_pairs(ref_mod, he_mod):
            if _role(ka) == 'filt':   # fixed blur filters: built the same way on both sides, checked rather than copied
                if not torch.allclose(sa[ka].to(sb[kb]), sb[kb], rtol=0, atol=1e-7): raise SystemExit(f"blur filters differ: {ka}")
            else: sb[kb].copy_(sa[ka])

def exact_singular_vectors(ref_mod):
    "Set the reference's spectral-norm u, v to the exact top singular vectors of each weight (float64 SVD)."
    for mod in ref_mod.modules():
        if hasattr(mod, 'weight_orig') and hasattr(mod, 'weight_u'):
            w = mod.weight_orig.detach().double().flatten(1)   # dim 0: every SN layer here is a Conv2d
            U, S, Vh = torch.linalg.svd(w, full_matrices=False)
            with torch.no_grad():
                mod.weight_u.copy_(U[:, 0]); mod.weight_v.copy_(Vh[0])

# --- fixed patch locations ----------------------------------------------------------------------------------------
def draw_patch_ids(he2ihc_G, x, layers, num_patches, n_draws=2, seed=0):
    "n_draws sets of locations per NCE layer (a step draws twice: NCE, then ASP), sized from the encoder's maps."
    with torch.no_grad(): hw = [f.shape[-2] * f.shape[-1] for f in he2ihc_G.encode(x, layers)]
    g = torch.Generator().manual_seed(seed)
    return [[torch.randperm(n, generator=g)[:num_patches] for n in hw] for _ in range(n_draws)]

def feed_patch_ids(F_mod, draws, as_numpy):
    "Make `F_mod` take its fresh draws from `draws`, in order; returns the list of draws still unused."
    queue, orig = list(draws), F_mod.forward
    def forward(feats, num_patches=64, patch_ids=None, **kw):
        if patch_ids is None:
            if not queue: raise RuntimeError("the step drew more patch sets than were fixed in advance")
            patch_ids = [i.numpy() if as_numpy else i for i in queue.pop(0)]
        return orig(feats, num_patches, patch_ids, **kw)
    F_mod.forward = forward
    return queue

def reference_normalize():
    "Give he2ihc.models the reference's Normalize (networks.py, class Normalize): x / sqrt(sum((x + 1e-7)^2))."
    import he2ihc.models as hm
    tf = hm.F
    proxy = types.ModuleType('functional_with_reference_normalize')
    proxy.__dict__.update({k: getattr(tf, k) for k in dir(tf) if not k.startswith('__')})
    proxy.normalize = lambda x, dim=1, eps=1e-7: x.div((x + 1e-7).pow(2).sum(dim, keepdim=True).pow(0.5))
    hm.F = proxy

def reference_power_iteration():
    """Give torch's parametrized spectral norm (he2ihc's) the power-iteration order of the hook-based
    torch.nn.utils.spectral_norm (the reference's): v = normalize(W^T u), then u = normalize(W v)."""
    from torch.nn.utils import parametrizations as pz
    import torch.nn.functional as tF
    @torch.no_grad()
    def _power_method(self, weight_mat, n_power_iterations):
        for _ in range(n_power_iterations):
            self._v = tF.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps, out=self._v)
            self._u = tF.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps, out=self._u)
    pz._SpectralNorm._power_method = _power_method

# --- comparison ---------------------------------------------------------------------------------------------------
def rel(a, b):
    "Relative difference of a (he2ihc) from b (reference)."
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    d = (a - b).norm().item(); n = b.norm().item()
    return d / n if n else (0.0 if d == 0 else float('inf'))

VANISHING = 1e-5   # a tensor whose reference value has a norm below this fraction of the network's is rounding noise

def compare_tensors(pairs, get, vanishing=None):
    """Overall and per-tensor relative differences of get(ref param), get(he2ihc param). Tensors whose value vanishes
    (norm < VANISHING x the network's, e.g. the gradient of a bias just before an instance norm, which is 0 but for
    rounding) are listed apart: their relative difference compares rounding noise."""
    per, size, ga, gb = {}, {}, [], []
    for name, pa, pb in pairs:
        ta, tb = get(pa, 'ref'), get(pb, 'he')
        if ta is None or tb is None:
            per[name] = None if ta is None and tb is None else float('inf'); continue
        per[name], size[name] = rel(tb, ta), ta.double().norm().item()
        ga.append(ta.flatten().double()); gb.append(tb.flatten().double())
    total = torch.cat(ga).norm().item() if ga else 0.0
    overall = rel(torch.cat(gb), torch.cat(ga)) if ga else None
    if vanishing is None: vanishing = sorted(k for k, n in size.items() if n < VANISHING * total)
    worst = max(((v, k) for k, v in per.items() if v is not None and k not in vanishing), default=(None, None))
    return dict(overall=overall, max_per_tensor=worst[0], worst_tensor=worst[1], vanishing=vanishing,
                vanishing_max_abs_diff_over_total=max((rel(get(pb, 'he'), get(pa, 'ref')) * size[n] / total
                                                       for n, pa, pb in pairs if n in vanishing), default=0.0),
                per_tensor=per, norm_ref=size)

def run(a):
    dtype = torch.float64 if a.double else torch.float32
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.ref_normalize: reference_normalize()
    if a.ref_power_iteration: reference_power_iteration()
    he, ihc = fixed_pair(a.size, dtype=dtype)
    ref = build_reference(a.reference, a.size, a.double)
    m = ref.model
    learn = build_he2ihc(he, ihc, a.epoch, a.double)
    net, trainer = learn.model, learn.stain_trainer
    p = trainer.preset
    nets = dict(G=(m.netG, net.G), D=(m.netD, net.D), F=(m.netF, net.F))
    if a.sn == 'exact':
        for r, _ in nets.values(): exact_singular_vectors(r)
    for r, h in nets.values(): copy_state(r, h)
    if tuple(int(l) for l in MIST_OPTIONS['nce_layers'].split(',')) != tuple(p.nce_layers): raise SystemExit("NCE layers differ")
    draws = draw_patch_ids(net.G, he, p.nce_layers, p.num_patches)
    left_ref, left_he = feed_patch_ids(m.netF, draws, as_numpy=True), feed_patch_ids(net.F, draws, as_numpy=False)
    pairs = {k: param_pairs(r, h) for k, (r, h) in nets.items()}
    before = {k: [(pa.detach().clone(), pb.detach().clone()) for _, pa, pb in v] for k, v in pairs.items()}

    # the reference's step (its train.py: set_input, optimize_parameters)
    ref.data = dict(A=he, B=ihc, A_paths=['A'], B_paths=['B'], current_epoch=a.epoch)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='To copy construct from a tensor')
        ref()
    # compute_G_loss adds NCE_Y and ASP to loss_NCE in place (loss_NCE_all = self.loss_NCE; loss_NCE_all += ...), so
    # its logged loss_NCE is NCE + ASP (NCE_Y is 0 without nce_idt): the NCE term is that sum less ASP
    ref_terms = dict(G_GAN=m.loss_G_GAN, NCE=m.loss_NCE.detach() - m.loss_ASP.detach(), ASP=m.loss_ASP, GP=m.loss_GP, G=m.loss_G,
                     D_real=m.loss_D_real, D_fake=m.loss_D_fake, D=m.loss_D)
    ref_terms = {k: float(torch.as_tensor(v).detach()) for k, v in ref_terms.items()}
    ref_logged_nce = float(m.loss_NCE.detach())
    # he2ihc's step (what Learner.fit runs for a training batch)
    learn.xb, learn.yb = (he,), (ihc,)
    grads = KeepGrads(); learn.add_cb(grads)
    learn._do_one_batch()                  # a training batch as Learner.fit runs it, through fastai's events
    learn.remove_cb(grads); grads.restore()
    he_terms = {k: v for k, v in trainer.history[-1].items() if k not in ('epoch', 'iter')}
    he_terms['G'] = sum(he_terms[k] for k in ('G_GAN', 'NCE', 'ASP', 'GP'))
    he_terms['D'] = 0.5 * (he_terms['D_real'] + he_terms['D_fake'])
    if left_ref or left_he: raise SystemExit(f"unused patch draws: reference {len(left_ref)}, he2ihc {len(left_he)}")

    losses = {k: dict(reference=ref_terms[k], he2ihc=he_terms[k], rel_diff=abs(he_terms[k] - ref_terms[k]) / abs(ref_terms[k]))
              for k in TERMS}
    grads = {k: compare_tensors(v, lambda q, side: None if q.grad is None else q.grad.detach()) for k, v in pairs.items()}
    updates = {}
    for k, v in pairs.items():
        old = {id(pa): (oa, ob) for (_, pa, pb), (oa, ob) in zip(v, before[k])}
        old.update({id(pb): (oa, ob) for (_, pa, pb), (oa, ob) in zip(v, before[k])})
        # Adam's first step moves a weight by about lr x sign(grad): tensors with vanishing gradients move at random
        updates[k] = compare_tensors(v, lambda q, side: q.detach() - old[id(q)][0 if side == 'ref' else 1], grads[k]['vanishing'])
    ok_losses = all(v['rel_diff'] <= LOSS_TARGET for v in losses.values())
    ok_grads = all(g['overall'] is not None and g['max_per_tensor'] <= GRAD_TARGET for g in grads.values())
    return dict(settings=dict(size=a.size, dtype=str(dtype).replace('torch.', ''), epoch=a.epoch, sn=a.sn,
                              ref_normalize=a.ref_normalize, ref_power_iteration=a.ref_power_iteration, asp_p=trainer.asp.p(a.epoch), num_patches=p.num_patches,
                              torch=torch.__version__, threads=torch.get_num_threads(), cpu=cpu_name(),
                              python=platform.python_version()),
                losses=losses, reference_logged_NCE=ref_logged_nce, grads=grads, updates=updates,
                targets=dict(loss=LOSS_TARGET, grad=GRAD_TARGET, losses_met=ok_losses, grads_met=ok_grads))

def cpu_name():
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        return next(l.split(':', 1)[1].strip() for l in out.splitlines() if l.startswith('Model name'))
    except Exception: return platform.processor()

def report(res):
    s = res['settings']
    lines = [f"size {s['size']}, {s['dtype']}, epoch {s['epoch']} (ASP p = {s['asp_p']:.3f}), spectral-norm vectors: {s['sn']}"
             + (", he2ihc given the reference's normalisation" if s['ref_normalize'] else '')
             + (", he2ihc given the reference's power-iteration order" if s.get('ref_power_iteration') else ''),
             '', '| term | reference | he2ihc | rel. diff |', '|---|---|---|---|']
    lines += [f"| {k} | {v['reference']:.7g} | {v['he2ihc']:.7g} | {v['rel_diff']:.1e} |" for k, v in res['losses'].items()]
    lines += [f"(the reference logs loss_NCE = {res['reference_logged_NCE']:.7g}: NCE + ASP, added in place)", '',
              '| net | grad rel. diff (all) | max per tensor | worst tensor | vanishing grads | update rel. diff (all) | max per tensor |',
              '|---|---|---|---|---|---|---|']
    for k, g in res['grads'].items():
        u = res['updates'][k]
        lines.append(f"| {k} | {g['overall']:.1e} | {g['max_per_tensor']:.1e} | {g['worst_tensor']} | {len(g['vanishing'])} "
                     f"| {u['overall']:.1e} | {u['max_per_tensor']:.1e} |")
    t = res['targets']
    lines += ['', f"losses within {t['loss']:g}: {'yes' if t['losses_met'] else 'NO'}; "
                  f"gradients within {t['grad']:g} (every tensor): {'yes' if t['grads_met'] else 'NO'}"]
    return '\n'.join(lines)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reference', type=Path, required=True, help="checkout of github.com/lifangda01/AdaptiveSupervisedPatchNCE")
    ap.add_argument('--size', type=int, default=128, help="crop side (the 5-layer discriminator takes 96 and up; default 128)")
    ap.add_argument('--epoch', type=int, default=35, help="epoch of the ASP schedule, from 1 (35: decay phase, p = 0.6)")
    ap.add_argument('--double', action='store_true', help="float64 on both sides")
    ap.add_argument('--sn', choices=('copy', 'exact'), default='copy',
                    help="copy: the reference's u, v after its initialisation; exact: top singular vectors on both sides")
    ap.add_argument('--ref-normalize', action='store_true', help="diagnostic: the reference's L2 normalisation in he2ihc's PatchSampleF")
    ap.add_argument('--ref-power-iteration', action='store_true',
                    help="diagnostic: the reference's spectral-norm power-iteration order (v, then u) in he2ihc's networks")
    ap.add_argument('--out', type=Path, help="write the results as JSON")
    a = ap.parse_args(argv)
    res = run(a)
    print(report(res))
    if a.out: a.out.write_text(json.dumps(res, indent=1))
    return res

if __name__ == '__main__': main()
