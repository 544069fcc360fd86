"""The reference implementation's U-Net, for its converted pretrained weights (pretrained.py).

The same parameters as our `UNetGenerator` (models/generator.py, the paper's text), another
function: junyanz/pytorch-CycleGAN-and-pix2pix puts its activations elsewhere.

    - the bottleneck ends in ReLU (its innermost block's up path starts with one), not LeakyReLU;
    - a skip passes a ReLU (its ReLU comes after the concatenation), not the encoder's LeakyReLU;
    - dropout sits in its ngf*8 middle decoder blocks, one block further out than the paper's.

Only `pretrained.py`'s converted files (their card's network says `layout="reference"`) run in it.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import UpBlock, assert_image_batch, init_weights, unet_depth_for
from .generator import UNetGenerator


class ReferenceUNetGenerator(UNetGenerator):
    """`UNetGenerator` with the reference code's activations and dropout places (see the module's docstring)."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, depth: int = 8,
                 norm: str = "batch", dropout: bool = True):
        super().__init__(in_channels=in_channels, out_channels=out_channels, ngf=ngf, depth=depth, norm=norm,
                         dropout=False)
        self.encoder[-1][2] = nn.ReLU()  # the bottleneck: conv, then the reference's up-path ReLU
        for j in range(1, depth - 4) if dropout else ():  # dropout in its ngf*8 middle blocks
            conv = self.decoder[j][0]
            self.decoder[j] = UpBlock(conv.in_channels, conv.out_channels, norm=norm, dropout=True)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_image_batch(x, self.in_channels, type(self).__name__)
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"a depth-{self.depth} generator needs H and W divisible by {2**self.depth}, "
                             f"got {tuple(x.shape[-2:])}")
        features = []
        for block in self.encoder:
            x = block(x)
            features.append(x)
        for j, block in enumerate(self.decoder):  # its ReLU comes after the concatenation
            x = torch.cat([block(x), torch.relu(features[self.depth - 2 - j])], dim=1)
        return self.to_image(x)


def build_reference_generator(*, image_size: int = 256, ngf: int = 64, norm: str = "batch", dropout: bool = True,
                              skips: bool = True, in_channels: int = 3, out_channels: int = 3) -> ReferenceUNetGenerator:
    """The reference's U-Net whose bottleneck is 1x1 for `image_size` (its pretrained models: 256 px, ngf 64)."""
    if not skips:
        raise ValueError("the reference's U-Net always has its skip connections")
    return ReferenceUNetGenerator(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                                  depth=unet_depth_for(image_size), norm=norm, dropout=dropout)
