"""Checks for the notebooks' exercises: they run your code and say precisely what is wrong.

Each `check_*` takes what the exercise asked you to write, runs it against the library's own
implementation (the reference answer) on fixed-seed inputs, prints one line, and returns a
`Check`: true when everything matched. A failure names what differs (which layer's output shape,
the parameter count off by how much, a skip connection missing, D's step sending gradient into G,
a loss value off the reference), with the likely cause. Code that still raises
`NotImplementedError` (the student version of a notebook, `make student`) gets "not implemented
yet", never a traceback; so does an exercise built on one that is not done yet.

    ok = checks.check_down_block(down_block)      # ✓ down_block: ... / ✗ down_block: ...
    Block = down_block if ok else DownBlock        # the notebook goes on with yours when it passes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import (DownBlock, EncoderDecoderGenerator, GANLoss, PatchDiscriminator, UNetGenerator, UpBlock,
                     count_parameters, discriminator_objective, generator_objective)
from .models.discriminator import field_of

PAPER_G_PARAMETERS = 54_413_955  # the 256 px U-Net with ngf 64 (the reference's count too)
NOT_YET = "not implemented yet (replace the `raise NotImplementedError()` in the cell above)"


@dataclass
class Check:
    """The outcome of one check: true when it passed; `problem` says what is wrong."""

    name: str
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        return f"✓ {self.name}: correct" if self else f"✗ {self.name}: {self.problem}"


def _check(name: str, run: Callable[[], str | None]) -> Check:
    """Run one check; the student's exceptions become the problem line (no traceback wall)."""
    try:
        problem = run()
    except NotImplementedError:
        problem = NOT_YET
    except Exception as err:  # noqa: BLE001 - whatever the student's code raised, in one line
        problem = f"your code raised {type(err).__name__}: {' '.join(str(err).split())[:300]}"
    result = Check(name, problem)
    print(result)
    return result


def mine_or_library(name: str, mine, ok: Check, library):
    """Your implementation when its check passed, else the library's (the notebook goes on either way)."""
    print(f"  -> going on with your {name}" if ok else f"  -> going on with the library's {name} (fix yours, then re-run)")
    return mine if ok else library


def _value(x) -> float:
    """A loss as a number, without autograd's warning about converting a tensor that requires grad."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def _seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _copy_weights(source: nn.Module, target: nn.Module) -> bool:
    """Copy `source`'s weights into `target` by position when their shapes line up (True if copied)."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst.values())):
        return False
    target.load_state_dict(dict(zip(dst, src)))
    return True


def _parameter_problem(what: str, got: int, want: int, hints: dict[int, str]) -> str | None:
    if got == want:
        return None
    diff = got - want
    return f"{what} has {got:,} parameters, the paper's has {want:,} (off by {diff:+,}){hints.get(diff, '')}"


def _same_function(mine: nn.Module, reference: nn.Module, x: torch.Tensor) -> bool | None:
    """Same outputs in eval mode once the weights are copied; None when the layers do not line up."""
    if not _copy_weights(mine, reference):
        return None
    mine.eval(), reference.eval()
    with torch.no_grad():
        return torch.allclose(mine(x), reference(x), atol=1e-5)


# ----------------------------------------------------------------------------- notebook 02: blocks
def library_down_block(in_channels: int, out_channels: int, normalize: bool = True) -> nn.Module:
    """The library's answer to exercise 1 (models/blocks.py)."""
    return DownBlock(in_channels, out_channels, normalize=normalize)


def library_up_block(in_channels: int, out_channels: int, dropout: bool = False) -> nn.Module:
    return UpBlock(in_channels, out_channels, dropout=dropout)


def _shape_and_size(call: str, block: nn.Module, x: torch.Tensor, want: tuple, reference: nn.Module, why: str):
    """The output shape, then the parameter count against the library's block (None when both match)."""
    out = block(x)
    if tuple(out.shape) != want:
        return f"{call} turned {tuple(x.shape)} into {tuple(out.shape)}, expected {want}: {why}"
    return _parameter_problem(call, count_parameters(block), count_parameters(reference),
                              {16: ": a bias before batch norm is wasted (bias=False)",
                               -32: ": is the BatchNorm2d missing?"})


def check_down_block(down_block: Callable[..., nn.Module]) -> Check:
    """down_block(in_channels, out_channels, normalize=True): Conv 4x4/2 (no bias) -> BatchNorm -> LeakyReLU(0.2)."""
    def run():
        block, x = down_block(3, 16), _seeded(2, 3, 64, 64)
        problem = _shape_and_size("down_block(3, 16)", block, x, (2, 16, 32, 32), DownBlock(3, 16),
                                  "a 4x4 convolution with stride 2 and padding 1 halves H and W")
        if problem:
            return problem
        if any(isinstance(m, nn.BatchNorm2d) for m in down_block(3, 16, normalize=False).modules()):
            return "down_block(..., normalize=False) still has a BatchNorm2d (the first block has none)"
        if any(type(m) is nn.ReLU for m in block.modules()):
            return "the encoder uses LeakyReLU(0.2), not ReLU (paper, appendix 6.1.1)"
        if _same_function(block, DownBlock(3, 16), x) is False:
            return "same layers as Conv -> BatchNorm -> LeakyReLU(0.2), but another output: check the order and the slope 0.2"
        return None
    return _check("down_block", run)


def check_up_block(up_block: Callable[..., nn.Module]) -> Check:
    """up_block(in_channels, out_channels, dropout=False): ConvT 4x4/2 (no bias) -> BatchNorm -> Dropout(0.5)? -> ReLU."""
    def run():
        block, x = up_block(32, 16, dropout=True), _seeded(2, 32, 8, 8)
        problem = _shape_and_size("up_block(32, 16)", block, x, (2, 16, 16, 16), UpBlock(32, 16),
                                  "a 4x4 ConvTranspose2d with stride 2 and padding 1 doubles H and W")
        if problem:
            return problem
        drops = [m.p for m in block.modules() if isinstance(m, nn.Dropout)]
        if drops != [0.5]:
            return f"up_block(..., dropout=True) needs one Dropout(0.5), has {drops or 'none'} (the paper's noise z)"
        if any(isinstance(m, nn.Dropout) for m in up_block(32, 16, dropout=False).modules()):
            return "up_block(..., dropout=False) still has a Dropout"
        if any(isinstance(m, nn.LeakyReLU) for m in block.modules()):
            return "the decoder uses ReLU, not LeakyReLU (paper, appendix 6.1.1)"
        if _same_function(block, UpBlock(32, 16, dropout=True), x) is False:
            return "same layers as ConvT -> BatchNorm -> Dropout -> ReLU, but another output: check their order"
        return None
    return _check("up_block", run)


# ----------------------------------------------------------------------------- notebook 02: the U-Net
def check_unet(unet_class: Callable[..., nn.Module]) -> Check:
    """unet_class(ngf=64, depth=8): the paper's U-Net, 54,413,955 parameters, skips from each encoder level."""
    def run():
        mine = unet_class(ngf=8, depth=6)
        x = _seeded(1, 3, 64, 64)
        try:
            out = mine(x)
        except RuntimeError as err:
            if "Sizes of tensors must match" in str(err):
                return ("torch.cat got tensors of different sizes: concatenate each decoder output with the encoder "
                        "feature of the same resolution (decoder block j with encoder block depth-2-j)")
            if "channels, but got" in str(err):
                return ("a block got other channels than it was built for: every decoder block after the first reads "
                        "2x the channels, because forward concatenates a skip onto what the block before made")
            raise
        if tuple(out.shape) != (1, 3, 64, 64):
            return f"MyUNet(ngf=8, depth=6) turned (1, 3, 64, 64) into {tuple(out.shape)}, expected (1, 3, 64, 64)"
        if out.abs().max() > 1 or not any(isinstance(m, nn.Tanh) for m in mine.modules()):
            return "the last layer needs a Tanh: outputs must lie in [-1, 1], like the normalised targets"
        got = count_parameters(unet_class(ngf=64, depth=8))
        no_skips = count_parameters(EncoderDecoderGenerator(ngf=64, depth=8))
        if got == no_skips:
            return (f"{got:,} parameters: exactly the encoder-decoder without skips. Concatenate each encoder "
                    "feature onto the decoder output of the same size, and give the next block 2x the channels")
        problem = _parameter_problem("MyUNet(ngf=64, depth=8)", got, PAPER_G_PARAMETERS,
                                     {-3: ": the final ConvTranspose2d keeps its bias (3 values)"})
        if problem:
            return problem + " (compare layer_table(MyUNet(), x) with the library's)"
        if _same_function(mine, UNetGenerator(ngf=8, depth=6), x) is False:
            return ("the right layers but another output: decoder block j must be concatenated with encoder "
                    "block depth-2-j (the one of the same resolution), in the order [decoder, encoder]")
        return None
    return _check("MyUNet", run)


# ----------------------------------------------------------------------------- notebook 02: PatchGAN
def conv_layers(model: nn.Module) -> list[tuple[int, int]]:
    """A model's convolutions as (kernel, stride), input to output: what `receptive_field` takes."""
    return [(m.kernel_size[0], m.stride[0]) for m in model.modules() if isinstance(m, nn.Conv2d)]


PATCH_LAYERS = {n: conv_layers(PatchDiscriminator(n_layers=n)) for n in (0, 1, 3, 5)}  # 1, 16, 70, 286 px


def check_receptive_field(receptive_field: Callable[[list[tuple[int, int]]], int]) -> Check:
    """receptive_field([(kernel, stride), ...]) from input to output -> the side of the patch one output sees."""
    def run():
        for n, layers in PATCH_LAYERS.items():
            want = field_of([nn.Conv2d(1, 1, k, s) for k, s in layers])
            got = receptive_field(layers)
            if got != want:
                hint = ("walk back from the output: r <- (r - 1) * stride + kernel, starting at r = 1"
                        if n else "1x1 convolutions see one pixel")
                return f"for {layers} yours gives {got}, expected {want} ({want}x{want} PatchGAN): {hint}"
        return None
    return _check("receptive_field", run)


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


def _tiny_pair(seed: int = 0):
    torch.manual_seed(seed)
    G = UNetGenerator(ngf=4, depth=5, dropout=False)
    D = PatchDiscriminator(in_channels=6, ndf=4, n_layers=1)
    return G, D, _seeded(2, 3, 32, 32, seed=1).tanh(), _seeded(2, 3, 32, 32, seed=2).tanh()


def check_discriminator_loss(discriminator_loss: Callable) -> Check:
    """discriminator_loss(D, real_a, real_b, fake_b): 0.5 * (BCE(D(a, b), real) + BCE(D(a, G(a)), fake)), G untouched."""
    def run():
        G, D, a, b = _tiny_pair()
        fake = G(a)
        want = _value(discriminator_objective(D, GANLoss("vanilla"), a, b, fake).total)
        loss = discriminator_loss(D, a, b, fake)
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
        got = _value(loss)
        if abs(got - _value(want.total)) > 1e-4:
            fake_label = _value(GANLoss("vanilla")(D(a, fake), False) + 100 * want.l1)
            if abs(got - fake_label) < 1e-4:
                return "G wants D to call its output real: the adversarial term's target is real, not fake"
            if abs(got - _value(want.gan + want.l1)) < 1e-4:
                return "the L1 term is not weighted: the paper uses lambda = 100"
            if abs(got - _value(want.gan + 100 * F.mse_loss(fake, b))) < 1e-4:
                return "that is an L2 (MSE) term; pix2pix uses L1, which blurs less"
            return f"G's loss is {got:.4f}, expected {_value(want.total):.4f} (gan {_value(want.gan):.4f} + 100 x L1 {_value(want.l1):.4f})"
        grad = torch.autograd.grad(loss, fake, allow_unused=True)[0]
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
    The trainer's TrainingState.training_step (train.py) adds mixed precision and gradient averaging.
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
        got = _after_one_step(training_step)
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
