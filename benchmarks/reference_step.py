"""Time the public ASP implementation's training step next to he2ihc's presets, on this machine.

Usage:
    git clone https://github.com/lifangda01/AdaptiveSupervisedPatchNCE /path/to/asp
    python benchmarks/reference_step.py --reference /path/to/asp [--size 256] [--iters 3] [--rounds 2] [--out ref.json]

The reference is built with the options of its MIST launcher (experiments/mist_launcher.py): cpt model, FastCUT mode,
resnet_6blocks generator with instance norm, n_layers discriminator (5 layers, ndf 32, instance norm), spectral weight
norm, NCE layers 0,4,8,12,16, 256 patches, nce_T 0.07, lambda_NCE 10, lambda_asp 10 with lambda_linear, lambda_gp 10
with weights [1/64 .. 1], anti-aliased sampling, batch 1 (or --bs). Its step is CPTModel.optimize_parameters() after
data_dependent_initialize(), as its train.py runs it. One change is needed to run it on a CPU: its Gaussian pyramid
puts its kernel on 'cuda' unconditionally, so the kernel is created on the chosen device instead. The reference's
code is used as it is and is not copied into he2ihc.

It then runs benchmarks/train_step.py with the reference first in each round: every he2ihc figure comes with its
ratio to the reference's seconds per iteration, measured interleaved in the same process.
"""
import argparse, sys, time, types
from pathlib import Path
import torch

MIST_OPTIONS = dict(model='cpt', CUT_mode='FastCUT', nce_idt=False, flip_equivariance=False, input_nc=3, output_nc=3, ngf=64,
    netG='resnet_6blocks', normG='instance', no_dropout=True, init_type='xavier', init_gain=0.02, no_antialias=False,
    no_antialias_up=False, netF='mlp_sample', netF_nc=256, ndf=32, netD='n_layers', n_layers_D=5, normD='instance',
    weight_norm='spectral', gan_mode='lsgan', lr=2e-4, beta1=0.5, beta2=0.999, lambda_GAN=1.0, lambda_NCE=10.0,
    nce_layers='0,4,8,12,16', nce_T=0.07, num_patches=256, nce_includes_all_negatives_from_minibatch=False,
    lambda_gp=10.0, gp_weights='[0.015625,0.03125,0.0625,0.125,0.25,1.0]', lambda_asp=10.0, asp_loss_mode='lambda_linear',
    n_downsampling=2, n_epochs=30, n_epochs_decay=10, direction='AtoB', preprocess='crop', isTrain=True,
    checkpoints_dir='/tmp/asp_reference_checkpoints', name='benchmark')

class ReferenceStep:
    "The public ASP code's training step (CPTModel.optimize_parameters) on a fixed batch."
    def __init__(self, checkout, size:int=256, bs:int=1, device='cpu'):
        checkout = Path(checkout).resolve()
        if not (checkout/'models'/'cpt_model.py').exists():
            raise SystemExit(f"{checkout}: not a checkout of AdaptiveSupervisedPatchNCE (models/cpt_model.py is missing)")
        sys.path.insert(0, str(checkout))
        try: import cv2  # noqa: F401
        except ImportError: sys.modules['cv2'] = types.ModuleType('cv2')   # only its util.util's colour transfer uses OpenCV, not training
        from models import gauss_pyramid
        from models.cpt_model import CPTModel
        self.device = torch.device(device)
        # the reference creates the pyramid kernel on 'cuda' whatever the device: create it on ours
        gauss_pyramid.Gauss_Pyramid_Conv.gauss_kernel.__defaults__ = (self.device, 3)
        opt = argparse.Namespace(**MIST_OPTIONS, batch_size=bs, crop_size=size,
                                 gpu_ids=[self.device.index or 0] if self.device.type == 'cuda' else [])
        torch.manual_seed(0)
        self.model = CPTModel(opt)
        g = torch.Generator().manual_seed(0)
        A, B = [torch.rand(bs, 3, size, size, generator=g) * 2 - 1 for _ in range(2)]
        self.data = dict(A=A, B=B, A_paths=['A'] * bs, B_paths=['B'] * bs, current_epoch=1)
        self.model.data_dependent_initialize(self.data)
        for net in (self.model.netG, self.model.netD, self.model.netF): net.train()
    def __call__(self):
        self.model.set_input(self.data)
        self.model.optimize_parameters()

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--reference', type=Path, required=True, help="checkout of github.com/lifangda01/AdaptiveSupervisedPatchNCE")
    a, rest = p.parse_known_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import train_step
    return train_step.main(['--reference', str(a.reference)] + rest)

if __name__ == '__main__': main()
