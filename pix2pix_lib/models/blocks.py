"""The two building blocks of pix2pix (paper, appendix 6.1) and the weight init.

The paper writes its networks as strings of blocks:

    Ck  = Convolution-BatchNorm-ReLU with k filters
    CDk = Convolution-BatchNorm-Dropout-ReLU with a dropout rate of 50%

All convolutions are 4x4 with stride 2: the encoder halves the image at every block, the decoder
(transposed convolutions) doubles it. Encoder ReLUs are leaky (slope 0.2), decoder ReLUs are not.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A normalisation layer by name: "batch", "instance" or "none".

    Instance norm follows the reference implementation: no learnable scale/shift and no running
    statistics, so it normalises every image on its own, at training and at test time alike.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: choose one of {NORMS}")


def conv_uses_bias(norm: str) -> bool:
    # A bias right before batch norm is wasted: the norm subtracts the mean and adds its own shift.
    # The reference applies this rule to every inner conv; we follow it to match its parameter count.
    return norm != "batch"


class DownBlock(nn.Sequential):
    """Encoder block: Conv(4x4, stride 2) -> Norm -> LeakyReLU(0.2). Halves height and width.

    `normalize=False` drops the norm (the first block and the bottleneck of the U-Net).
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch",
                 normalize: bool = True):
        # The reference picks the bias from the network's norm even for its un-normalised layers
        # (first and bottleneck); we do the same so the parameter counts agree exactly.
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1,
                      bias=conv_uses_bias(norm)),
            norm_layer(norm if normalize else "none", out_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )


class UpBlock(nn.Sequential):
    """Decoder block: ConvTranspose(4x4, stride 2) -> Norm -> Dropout(0.5)? -> ReLU. Doubles H and W.

    Dropout here is pix2pix's only source of noise z (paper section 3.1): the generator ignored
    a noise input, so the authors inject randomness as dropout, at training and test time.
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch",
                 dropout: bool = False):
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1,
                               bias=conv_uses_bias(norm)),
            norm_layer(norm, out_channels),
            nn.Dropout(0.5) if dropout else nn.Identity(),
            nn.ReLU(inplace=True),
        )


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's init: conv weights ~ N(0, 0.02), biases 0; batch-norm scale ~ N(1, 0.02), shift 0.

    Applied layer by layer (not to every parameter), so norm scales start near 1, not near 0.
    """
    for m in module.modules():
        if getattr(getattr(m, "weight", None), "is_meta", False):
            continue  # no values to set yet (a network built to be loaded); and init on meta imports torch._dynamo
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze (False) or unfreeze (True) a network, e.g. D while G takes its step."""
    for p in module.parameters():
        p.requires_grad_(flag)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def unet_depth_for(image_size: int) -> int:
    """Number of down blocks that shrink `image_size` to 1x1: 8 for 256, 7 for 128, 6 for 64."""
    if not _is_power_of_two(image_size) or image_size < 8:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return image_size.bit_length() - 1


def assert_image_batch(x: torch.Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} expects a batch of shape (B, {channels}, H, W), got {tuple(x.shape)}")


@torch.no_grad()
def recompute_batch_norm(network: nn.Module, inputs: Iterable[torch.Tensor]) -> int:
    """"Precise BN": set every batch norm's running statistics to their average over `inputs`.

    Training keeps exponential running averages (momentum 0.1) of statistics whose weights change
    every step, so in eval mode they can be far from what the final weights produce: on real
    edges2shoes pairs at batch 8, eval-mode validation L1 swung between 0.10 and 0.34 while batch
    statistics stayed at ~0.11 (in the reference implementation too). Averaging afresh over a few
    dozen batches with the final weights removes the lag (Wu & Johnson, "Rethinking 'Batch' in
    BatchNorm", 2021). Only the batch norms run in train mode; dropout stays off, so the statistics
    are those of the network as eval mode uses it. Nothing but the statistics changes, and the
    network is left in the mode it was in. Returns the batches used.
    """
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    was_training, momenta = network.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below, not an exponential one
    network.eval()
    for m in norms:
        m.train()
    used = 0
    try:
        for x in inputs:
            network(x)
            used += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        network.train(was_training)
    return used
