"""The pix2pix generator: a U-Net (paper section 3.2.1, appendix 6.1.1).

An encoder squeezes the sketch down to a 1x1 bottleneck; a decoder grows it back to an image.
Plain encoder-decoders must push *every* detail through the bottleneck. The U-Net adds skip
connections: decoder block i also sees encoder block n-i, so edges that should stay where they
are (the outline of the drawing) travel straight across.

    256x256 sketch                                                     256x256 colour image
      |                                                                      ^
    enc0 C64   (128) ---------------------------------------------->  ConvT -> Tanh
      enc1 C128  (64) ---------------------------------------->  dec6 C64
        enc2 C256  (32) ---------------------------------->  dec5 C128
          enc3 C512  (16) ---------------------------->  dec4 C256
            enc4 C512  (8) ---------------------->  dec3 C512
              enc5 C512  (4) ---------------->  dec2 CD512
                enc6 C512  (2) ---------->  dec1 CD512
                  enc7 C512 (1x1 bottleneck) ->  dec0 CD512

(---> = concatenate along channels.) No norm on enc0 (paper) nor on the bottleneck (a 1x1 map
has no spatial statistics; batch 1 would zero it). Dropout on the three decoder blocks nearest the
bottleneck, as in the paper, its Lua code and the TensorFlow tutorial. The PyTorch reference
(junyanz/pytorch-CycleGAN-and-pix2pix) puts them one block further out: dec1-dec3.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import NORMS, DownBlock, UpBlock, assert_image_batch, init_weights, unet_depth_for


class UNetGenerator(nn.Module):
    """U-Net generator; with `skips=False` it is the paper's encoder-decoder ablation (Fig. 5).

    Parameters:
        in_channels:  channels of the input image (3 for an RGB sketch)
        out_channels: channels of the output image
        ngf:          filters in the first encoder block; deeper blocks double it up to 8*ngf
        depth:        number of down blocks; an image of size 2**depth reaches a 1x1 bottleneck
                      (8 for 256x256, 7 for 128x128, 6 for 64x64: see `unet_depth_for`)
        norm:         "batch" (paper), "instance" or "none"
        dropout:      dropout 0.5 in the three decoder blocks nearest the bottleneck
        skips:        U-Net skip connections (True) or a plain encoder-decoder (False)

    The reference implementation's pretrained weights run in models/reference.py's variant.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 depth: int = 8, norm: str = "batch", dropout: bool = True, skips: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}: choose one of {NORMS}")
        self.in_channels, self.out_channels, self.depth, self.skips = in_channels, out_channels, depth, skips

        widths = [min(ngf * 2**i, ngf * 8) for i in range(depth)]  # 64,128,256,512,512,... for ngf 64
        self.encoder = nn.ModuleList()
        for i, width in enumerate(widths):
            self.encoder.append(DownBlock(in_channels if i == 0 else widths[i - 1], width, norm=norm,
                                          normalize=0 < i < depth - 1))  # not first, not bottleneck

        self.decoder = nn.ModuleList()
        in_width = widths[-1]
        for j in range(depth - 1):  # dec_j mirrors enc_{depth-2-j}
            width = widths[depth - 2 - j]
            self.decoder.append(UpBlock(in_width, width, norm=norm, dropout=dropout and j < 3))
            in_width = 2 * width if skips else width
        self.to_image = nn.Sequential(
            nn.ConvTranspose2d(in_width, out_channels, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),  # output in [-1, 1], like the normalised targets
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_image_batch(x, self.in_channels, type(self).__name__)
        size = 2**self.depth
        if x.shape[-1] % size or x.shape[-2] % size:
            raise ValueError(f"a depth-{self.depth} generator needs H and W divisible by {size}, "
                             f"got {tuple(x.shape[-2:])}")
        features = []
        for block in self.encoder:  # (B, C, H, W) -> ... -> (B, 8*ngf, H/2**depth, W/2**depth)
            x = block(x)
            features.append(x)
        for j, block in enumerate(self.decoder):
            x = block(x)  # (B, width_j, 2h, 2w)
            if self.skips:
                x = torch.cat([x, features[self.depth - 2 - j]], dim=1)  # (B, 2*width_j, 2h, 2w)
        return self.to_image(x)  # (B, out_channels, H, W) in [-1, 1]


class EncoderDecoderGenerator(UNetGenerator):
    """The U-Net without its skip connections: the paper's "encoder-decoder" baseline (Fig. 5)."""

    def __init__(self, **kwargs):
        super().__init__(skips=False, **kwargs)


def build_generator(*, image_size: int = 256, ngf: int = 64, norm: str = "batch",
                    dropout: bool = True, skips: bool = True, in_channels: int = 3,
                    out_channels: int = 3) -> UNetGenerator:
    """A generator whose bottleneck is 1x1 for `image_size` (the paper's shape at 256x256)."""
    return UNetGenerator(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                         depth=unet_depth_for(image_size), norm=norm, dropout=dropout, skips=skips)
