"""The checks of notebook 02: the blocks, the U-Net with its skips, the receptive field."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..models import DownBlock, EncoderDecoderGenerator, PatchDiscriminator, UNetGenerator, UpBlock, count_parameters
from ..models.discriminator import field_of
from .core import PAPER_G_PARAMETERS, Check, _check, _parameter_problem, _same_function, _seeded


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
def _init_problem(model: nn.Module, std: float = 0.02) -> str | None:
    """The paper's init: every convolution's weights ~ N(0, 0.02) (PyTorch's default is a uniform of
    another spread, 1/sqrt(fan_in), e.g. about 0.08 for the first 4x4 convolution of 3 channels)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() >= 256:
            got = float(m.weight.detach().std())
            if abs(got - std) > 0.25 * std or abs(float(m.weight.detach().mean())) > 0.25 * std:
                return (f"the weights of {name or 'a convolution'} have std {got:.4f}, not the paper's N(0, 0.02): "
                        "call p2p.models.init_weights(self) at the end of __init__ (PyTorch's default init is another one)")
    return None


def check_unet(unet_class: Callable[..., nn.Module]) -> Check:
    """unet_class(ngf=64, depth=8): the paper's U-Net, 54,413,955 parameters, skips from each encoder level."""
    def run():
        mine = unet_class(ngf=8, depth=6)
        x = _seeded(1, 3, 64, 64)
        try:
            out = mine(x)
        except (RuntimeError, ValueError) as err:  # torch raises ValueError for batch norm on 1 value
            if "Sizes of tensors must match" in str(err):
                return ("torch.cat got tensors of different sizes: concatenate each decoder output with the encoder "
                        "feature of the same resolution (decoder block j with encoder block depth-2-j)")
            if "Expected more than 1 value per channel" in str(err):
                return ("batch norm on the 1x1 bottleneck (the innermost encoder block): at batch size 1 it sees one "
                        "value per channel and fails (or zeroes it); the paper's own errata (appendix 6.3) removes it: "
                        "normalize=False there")
            if "channels, but got" in str(err):
                return ("a block got other channels than it was built for: every decoder block after the first reads "
                        "2x the channels, because forward concatenates a skip onto what the block before made")
            raise
        if tuple(out.shape) != (1, 3, 64, 64):
            return f"MyUNet(ngf=8, depth=6) turned (1, 3, 64, 64) into {tuple(out.shape)}, expected (1, 3, 64, 64)"
        with torch.no_grad():  # a large input, in eval mode: without a Tanh the outputs leave [-1, 1]
            probe = mine.eval()(50 * x).abs().max()
        mine.train()
        if out.abs().max() > 1 or probe > 1 + 1e-6:
            return "the last layer needs a Tanh: outputs must lie in [-1, 1], like the normalised targets"
        drops = [m.p for m in mine.modules() if isinstance(m, nn.Dropout)]
        if drops != [0.5] * 3:
            return (f"{len(drops)} Dropout layers ({drops}); the paper puts Dropout(0.5) in the three decoder "
                    "blocks nearest the bottleneck (its noise z)")
        got = count_parameters(unet_class(ngf=64, depth=8))
        no_skips = count_parameters(EncoderDecoderGenerator(ngf=64, depth=8))
        if got == no_skips:
            return (f"{got:,} parameters: exactly the encoder-decoder without skips. Concatenate each encoder "
                    "feature onto the decoder output of the same size, and give the next block 2x the channels")
        problem = _parameter_problem("MyUNet(ngf=64, depth=8)", got, PAPER_G_PARAMETERS,
                                     {-3: ": the final ConvTranspose2d keeps its bias (3 values)",
                                      128: ": batch norm on the first encoder block (C64 has none, appendix 6.1.1: "
                                           "normalize=False for block 0)",
                                      1024: ": batch norm on the 1x1 bottleneck (the paper's errata, appendix 6.3, "
                                            "removes it: normalize=False for the innermost block)"})
        if problem:
            return problem + " (compare layer_table(MyUNet(), x) with the library's)"
        if problem := _init_problem(mine):
            return problem
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
