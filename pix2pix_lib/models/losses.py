"""The pix2pix objective (paper section 3.1, equations 1-4).

    L_cGAN(G, D) = E[log D(x, y)] + E[log(1 - D(x, G(x)))]         x = sketch, y = target
    L_L1(G)      = E[ ||y - G(x)||_1 ]
    G*           = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G)     lambda = 100

In practice (section 3.3) G maximises log D(x, G(x)) instead of minimising log(1 - D(x, G(x))),
which gives stronger gradients early on, and D's objective is halved to slow D down relative to G.
Both objectives below are the functions the trainer and the notebooks share.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan")
LAMBDA_L1 = 100.0  # paper section 4: L1 weight used in all its experiments


class GANLoss(nn.Module):
    """Adversarial loss against a "real" or "fake" target for every patch logit.

    mode "vanilla": binary cross-entropy on logits (the paper's cGAN).
    mode "lsgan":   least squares (Mao et al. 2017), often steadier; also on raw outputs.
    The real/fake labels are buffers, so they follow the module to the GPU.
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN mode {mode!r}: choose one of {GAN_MODES}")
        self.mode = mode
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = (self.real_label if target_is_real else self.fake_label).to(logits.dtype).expand_as(logits)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


class GeneratorLoss(NamedTuple):
    total: torch.Tensor  # gan + lambda * l1: what G's optimiser minimises
    gan: torch.Tensor    # how well G fools D
    l1: torch.Tensor     # mean absolute error to the target (unweighted, in [-1, 1] units)


class DiscriminatorLoss(NamedTuple):
    total: torch.Tensor  # 0.5 * (real + fake): what D's optimiser minimises
    real: torch.Tensor   # D's loss on (A, real B)
    fake: torch.Tensor   # D's loss on (A, G(A))


def discriminator_objective(discriminator: nn.Module, gan_loss: GANLoss, real_a: torch.Tensor,
                            real_b: torch.Tensor, fake_b: torch.Tensor) -> DiscriminatorLoss:
    """D learns to tell (A, real B) from (A, G(A)); halved as in the paper (section 3.3).

    `fake_b` is detached: this step must not send gradients into the generator.
    """
    loss_real = gan_loss(discriminator(real_a, real_b), True)
    loss_fake = gan_loss(discriminator(real_a, fake_b.detach()), False)
    return DiscriminatorLoss(0.5 * (loss_real + loss_fake), loss_real, loss_fake)


def generator_objective(discriminator: nn.Module, gan_loss: GANLoss, real_a: torch.Tensor,
                        real_b: torch.Tensor, fake_b: torch.Tensor, *, lambda_l1: float = LAMBDA_L1,
                        use_gan: bool = True) -> GeneratorLoss:
    """G wants D to call (A, G(A)) real, and G(A) close to B in L1.

    `use_gan=False` gives the "L1 only" ablation, `lambda_l1=0` the "cGAN only" one (paper Fig. 4).
    """
    l1 = F.l1_loss(fake_b, real_b)
    gan = gan_loss(discriminator(real_a, fake_b), True) if use_gan else torch.zeros((), device=fake_b.device)
    return GeneratorLoss(gan + lambda_l1 * l1, gan, l1)
