"""The checks of notebook 03: the GAN loss, the two objectives, one training step."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..models import GANLoss, PatchDiscriminator, UNetGenerator, discriminator_objective, generator_objective
from .core import Check, _check, _seeded, _value


# ----------------------------------------------------------------------------- notebook 03: losses
def check_gan_loss(gan_loss: Callable[[torch.Tensor, bool], torch.Tensor]) -> Check:
    """gan_loss(logits, target_is_real): binary cross-entropy of every patch logit against 1 (real) or 0 (fake)."""
    reference = GANLoss("vanilla")

    def run():
        logits = 3 * _seeded(2, 1, 8, 8)
        for real in (True, False):
            got, want = _value(gan_loss(logits, real)), _value(reference(logits, real))
            if abs(got - want) < 1e-5:
                continue
            if abs(got - _value(reference(logits, not real))) < 1e-5:
                return f"target_is_real={real} gives the loss for the other label: real patches want 1, fake ones 0"
            if abs(got - want * logits.numel()) < 1e-3:
                return "the sum over patches; the loss is their mean"
            if abs(got - _value(F.binary_cross_entropy_with_logits(torch.sigmoid(logits), torch.full_like(logits, real)))) < 1e-5:
                return "sigmoid applied twice: D outputs logits and binary_cross_entropy_with_logits applies the sigmoid itself"
            return f"gan_loss(logits, {real}) = {got:.4f}, expected {want:.4f} (binary cross-entropy on logits, mean)"
        return None
    return _check("gan_loss", run)


def library_gan_loss(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """The library's answers to the loss exercises (models/losses.py), with the exercises' signatures."""
    return GANLoss("vanilla").to(logits.device)(logits, target_is_real)


def library_discriminator_loss(D, real_a, real_b, fake_b) -> torch.Tensor:
    return discriminator_objective(D, GANLoss("vanilla").to(real_a.device), real_a, real_b, fake_b).total


def library_generator_loss(D, real_a, real_b, fake_b, lambda_l1: float = 100.0) -> torch.Tensor:
    return generator_objective(D, GANLoss("vanilla").to(real_a.device), real_a, real_b, fake_b, lambda_l1=lambda_l1).total


def _tiny_pair(seed: int = 0):
    torch.manual_seed(seed)
    G = UNetGenerator(ngf=4, depth=5, dropout=False)
    D = PatchDiscriminator(in_channels=6, ndf=4, n_layers=1)
    return G, D, _seeded(2, 3, 32, 32, seed=1).tanh(), _seeded(2, 3, 32, 32, seed=2).tanh()


def _loss_problem(loss, what: str) -> str | None:
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        return f"{what} must return the loss as a scalar tensor (not {type(loss).__name__}): backward() needs it"
    if not loss.requires_grad:
        return f"{what}'s loss carries no gradient at all: nothing is detached in it but fake_b, in D's loss only"
    return None


def check_discriminator_loss(discriminator_loss: Callable) -> Check:
    """discriminator_loss(D, real_a, real_b, fake_b): 0.5 * (BCE(D(a, b), real) + BCE(D(a, G(a)), fake)), G untouched."""
    def run():
        G, D, a, b = _tiny_pair()
        fake = G(a)
        want = _value(discriminator_objective(D, GANLoss("vanilla"), a, b, fake).total)
        loss = discriminator_loss(D, a, b, fake)
        if problem := _loss_problem(loss, "discriminator_loss"):
            return problem
        got = _value(loss)
        if abs(got - 2 * want) < 1e-5:
            return f"{got:.4f} is twice the paper's value: it halves D's objective, 0.5 * (real + fake)"
        if abs(got - want) > 1e-5:
            return f"D's loss is {got:.4f}, expected {want:.4f}: D judges the pairs (a, b) and (a, fake_b)"
        loss.backward()
        if any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()):
            return "D's loss sent gradient into G: detach fake_b (D's step must not change G)"
        return None
    return _check("discriminator_loss", run)


def check_generator_loss(generator_loss: Callable) -> Check:
    """generator_loss(D, real_a, real_b, fake_b, lambda_l1=100): BCE(D(a, G(a)), real) + lambda * L1(G(a), b)."""
    def run():
        G, D, a, b = _tiny_pair()
        fake = G(a)
        want = generator_objective(D, GANLoss("vanilla"), a, b, fake, lambda_l1=100.0)
        loss = generator_loss(D, a, b, fake, lambda_l1=100.0)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            return _loss_problem(loss, "generator_loss")
        got = _value(loss)
        if abs(got - _value(want.total)) > 1e-4:
            fake_label = _value(GANLoss("vanilla")(D(a, fake), False) + 100 * want.l1)
            if abs(got - fake_label) < 1e-4:
                return "G wants D to call its output real: the adversarial term's target is real, not fake"
            if abs(got - _value(want.gan + want.l1)) < 1e-4:
                return "the L1 term is not weighted: the paper uses lambda = 100"
            if abs(got - _value(-GANLoss("vanilla")(D(a, fake), False) + 100 * want.l1)) < 1e-4:
                return ("that is the saturating loss, G minimising log(1 - D(a, G(a))): its gradient vanishes while D "
                        "wins; the paper has G maximise log D(a, G(a)) instead: gan_loss(D(a, fake_b), True)")
            if abs(got - _value(want.gan + 100 * F.l1_loss(fake, a))) < 1e-4:
                return "the L1 term compares fake_b with the sketch real_a; it must compare it with the target real_b"
            if abs(got - _value(want.gan + 100 * F.mse_loss(fake, b))) < 1e-4:
                return "that is an L2 (MSE) term; pix2pix uses L1, which blurs less"
            return f"G's loss is {got:.4f}, expected {_value(want.total):.4f} (gan {_value(want.gan):.4f} + 100 x L1 {_value(want.l1):.4f})"
        other = generator_loss(D, a, b, fake, lambda_l1=10.0)  # lambda_l1 must be the argument, not a constant
        if abs(_value(other) - _value(want.gan + 10 * want.l1)) > 1e-4:
            if abs(_value(other) - _value(want.total)) < 1e-4:
                return "lambda_l1=10 gives the loss of lambda = 100: use the argument lambda_l1, not a hard-coded 100"
            return f"with lambda_l1=10 G's loss is {_value(other):.4f}, expected {_value(want.gan + 10 * want.l1):.4f}"
        grad = torch.autograd.grad(loss, fake, allow_unused=True)[0] if loss.requires_grad else None
        if grad is None or grad.abs().sum() == 0:
            return "no gradient reaches G: do not detach fake_b in G's loss"
        if not torch.allclose(grad, torch.autograd.grad(want.total, fake)[0], atol=1e-6):
            return ("the right value, but not all of it reaches G: the adversarial term must see fake_b itself, "
                    "not fake_b.detach(), so that G learns from D's verdict")
        return None
    return _check("generator_loss", run)


# ----------------------------------------------------------------------------- notebook 03: one step
def library_training_step(G, D, opt_g, opt_d, real_a, real_b, *, g_first=False, zero_grad=True):
    """The algorithm's core (the answer to the exercise) -> (D's loss, G's loss) as floats.

    `g_first` and `zero_grad=False` are two classic mistakes, which the check recognises.
    The trainer's TrainingState.training_step (train/step.py) adds mixed precision and gradient averaging.
    """
    gan, losses = GANLoss("vanilla"), {}

    def d_step(fake):
        if zero_grad:
            opt_d.zero_grad()
        loss = discriminator_objective(D, gan, real_a, real_b, fake).total  # the fake is detached inside
        loss.backward()
        opt_d.step()
        losses["d"] = loss.item()

    def g_step(fake):
        if zero_grad:
            opt_g.zero_grad()
        loss = generator_objective(D, gan, real_a, real_b, fake).total
        loss.backward()
        opt_g.step()
        losses["g"] = loss.item()

    fake = G(real_a)  # generated once, used by both steps
    for step in ((g_step, d_step) if g_first else (d_step, g_step)):
        step(fake)
    return losses["d"], losses["g"]


def _after_one_step(step: Callable, variant: dict | None = None) -> torch.Tensor:
    G, D, a, b = _tiny_pair()
    for p in [*G.parameters(), *D.parameters()]:
        p.grad = torch.full_like(p, 0.5)  # stale gradients, as after an earlier step: zero_grad must clear them
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), **adam), torch.optim.Adam(D.parameters(), **adam)
    if variant is None:
        returned = step(G, D, opt_g, opt_d, a, b)
        if not (isinstance(returned, tuple) and len(returned) == 2 and all(isinstance(v, float) for v in returned)):
            raise TypeError(f"training_step must return (loss_d, loss_g) as two floats (.item()), got {returned!r:.80}")
    else:
        library_training_step(G, D, opt_g, opt_d, a, b, **variant)
    return torch.cat([p.detach().flatten() for p in [*G.parameters(), *D.parameters()]])


def check_training_step(training_step: Callable) -> Check:
    """training_step(G, D, opt_g, opt_d, real_a, real_b): generate once, update D (on a detached fake), then G."""
    def run():
        start = torch.cat([p.detach().flatten() for m in _tiny_pair()[:2] for p in m.parameters()])
        try:
            got = _after_one_step(training_step)
        except RuntimeError as err:
            if "modified by an inplace operation" in str(err):
                return ("G's loss was computed before D's update (opt_d.step() changed the D it went through): "
                        "compute generator_loss after opt_d.step(), so G learns from the updated D")
            raise
        if torch.equal(got, start):
            return "no parameter changed: call backward() and each optimiser's step()"
        if torch.allclose(got, _after_one_step(None, {}), atol=1e-6):
            return None
        for variant, why in (({"zero_grad": False}, "gradients from before the step were kept: zero_grad() each "
                                                     "optimiser before its backward()"),
                             ({"g_first": True}, "G was updated before D: the paper updates D first, then G")):
            if torch.allclose(got, _after_one_step(None, variant), atol=1e-6):
                return why
        return ("the parameters differ from one reference step (D on (a, b) and (a, G(a).detach()), then G on "
                "the GAN + 100 x L1 loss, Adam lr 2e-4, betas (0.5, 0.999))")
    return _check("training_step", run)
