"""The objective: GANLoss values on known inputs, halved D objective, G objective with L1."""

import math

import pytest
import torch
import torch.nn.functional as F

from pix2pix_lib.models import GANLoss, PatchDiscriminator, discriminator_objective, generator_objective


def test_vanilla_loss_is_bce_with_logits():
    loss = GANLoss("vanilla")
    zeros = torch.zeros(2, 1, 4, 4)
    assert loss(zeros, True).item() == pytest.approx(math.log(2))
    assert loss(zeros, False).item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 3, 3), 20.0)
    assert loss(big, True).item() < 1e-6
    assert loss(big, False).item() == pytest.approx(20.0, rel=1e-4)


def test_lsgan_loss_is_mse_to_labels():
    loss = GANLoss("lsgan")
    x = torch.full((1, 1, 2, 2), 0.5)
    assert loss(x, True).item() == pytest.approx(0.25)
    assert loss(torch.ones(1, 1, 2, 2), False).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown GAN mode"):
        GANLoss("wgan")


class ConstantD(torch.nn.Module):
    """A discriminator that answers `real_logit` on (a, b) when b is the real image, else `fake_logit`."""

    def __init__(self, real_b):
        super().__init__()
        self.real_b = real_b

    def forward(self, a, b):
        is_real = torch.equal(b, self.real_b)
        return torch.full((b.shape[0], 1, 2, 2), 3.0 if is_real else -1.0)


def test_discriminator_objective_is_halved_sum_and_detaches_fake():
    a, real_b = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    fake_b = torch.zeros(1, 3, 8, 8, requires_grad=True)
    out = discriminator_objective(ConstantD(real_b), GANLoss(), a, real_b, fake_b)
    expected_real = F.softplus(torch.tensor(-3.0)).item()  # -log(sigmoid(3))
    expected_fake = F.softplus(torch.tensor(-1.0)).item()  # -log(1 - sigmoid(-1))
    assert out.real.item() == pytest.approx(expected_real, rel=1e-5)
    assert out.fake.item() == pytest.approx(expected_fake, rel=1e-5)
    assert out.total.item() == pytest.approx(0.5 * (expected_real + expected_fake), rel=1e-5)



def test_discriminator_step_sends_no_gradient_into_the_generator():
    from pix2pix_lib.models import build_generator

    g, d = build_generator(image_size=32, ngf=4), PatchDiscriminator(ndf=4, n_layers=1)
    a, real_b = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    discriminator_objective(d, GANLoss(), a, real_b, g(a)).total.backward()
    assert all(p.grad is None for p in g.parameters())  # fake_b was detached
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_generator_objective_weights_l1_by_lambda():
    a, real_b = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    fake_b = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    out = generator_objective(ConstantD(real_b), GANLoss(), a, real_b, fake_b, lambda_l1=100)
    assert out.l1.item() == pytest.approx(0.5)
    assert out.gan.item() == pytest.approx(F.softplus(torch.tensor(1.0)).item(), rel=1e-5)  # -log(sigmoid(-1))
    assert out.total.item() == pytest.approx(out.gan.item() + 50.0, rel=1e-5)
    l1_only = generator_objective(ConstantD(real_b), GANLoss(), a, real_b, fake_b, use_gan=False)
    assert l1_only.gan.item() == 0 and l1_only.total.item() == pytest.approx(50.0)


def test_generator_gradient_flows_through_discriminator():
    d = PatchDiscriminator(ndf=4, n_layers=1)
    a, real_b = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    fake_b = torch.randn(1, 3, 16, 16, requires_grad=True)
    generator_objective(d, GANLoss(), a, real_b, fake_b, lambda_l1=0).total.backward()
    assert fake_b.grad is not None and fake_b.grad.abs().sum() > 0
