"""The pix2pix discriminator: a PatchGAN (paper section 3.2.2, appendix 6.2).

Instead of one real/fake verdict per image, a PatchGAN is a small fully convolutional net whose
every output pixel judges one N x N patch of the input. L1 already gets the low frequencies
right; the discriminator only needs to enforce sharp, realistic local texture, so it can look at
patches. It sees the *pair* (sketch A, photo B) stacked along channels: a conditional GAN asks
"is B a plausible colouring of this A?", not just "is B a plausible image?".

    n_layers  patch (receptive field)  layers after the input
    0         1x1    "PixelGAN"         1x1 convs only
    1         16x16                     C64 - C128(stride 1) - out
    3         70x70  (paper default)    C64 - C128 - C256 - C512(stride 1) - out
    5         286x286 "ImageGAN" at 256 C64 - C128 - C256 - C512 - C512 - C512(stride 1) - out
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import NORMS, assert_image_batch, conv_uses_bias, init_weights, norm_layer


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator over (A, B) pairs.

    Parameters:
        in_channels: channels of A plus channels of B (6 for RGB sketch + RGB photo)
        ndf:         filters in the first layer; doubled per layer up to 8*ndf
        n_layers:    patch size selector: 0 -> 1x1, 1 -> 16x16, 3 -> 70x70, 5 -> 286x286
        norm:        "batch" (paper), "instance" or "none"
        conditional: judge the pair (A, B) (paper) or B alone (the paper's unconditional "GAN"
                     baseline, Table 1); then in_channels counts B's channels only

    Output: raw logits, one per patch, shape (B, 1, h, w). The loss applies the sigmoid.
    """

    def __init__(self, *, in_channels: int = 6, ndf: int = 64, n_layers: int = 3,
                 norm: str = "batch", conditional: bool = True):
        super().__init__()
        self.conditional = conditional
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}: choose one of {NORMS}")
        self.in_channels, self.n_layers = in_channels, n_layers
        bias = conv_uses_bias(norm)

        if n_layers == 0:  # PixelGAN: every output judges a single pixel's colour
            layers = [
                nn.Conv2d(in_channels, ndf, kernel_size=1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, 2 * ndf, kernel_size=1, bias=bias), norm_layer(norm, 2 * ndf),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(2 * ndf, 1, kernel_size=1, bias=bias),
            ]
        else:
            # First layer: no norm (paper: "BatchNorm is not applied to the first C64 layer").
            layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            width = ndf
            for i in range(1, n_layers + 1):
                stride = 2 if i < n_layers else 1  # the last feature layer keeps the resolution
                out = ndf * min(2**i, 8)
                layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=bias),
                           norm_layer(norm, out), nn.LeakyReLU(0.2, inplace=True)]
                width = out
            layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))  # one logit per patch
        self.net = nn.Sequential(*layers)
        init_weights(self)

    @property
    def min_input_size(self) -> int:
        """Smallest H and W it takes: n_layers halvings and two 4x4 stride-1 convs must leave a 2x2 map."""
        return min_input_size(self.n_layers)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits for the pairs (a, b): (B, Ca, H, W), (B, Cb, H, W) -> (B, 1, h, w). Unconditional: b alone."""
        pair = torch.cat([a, b], dim=1) if self.conditional else b  # (B, Ca+Cb, H, W) or (B, Cb, H, W)
        assert_image_batch(pair, self.in_channels, type(self).__name__)
        if min(pair.shape[-2:]) < self.min_input_size:
            raise ValueError(f"{type(self).__name__} with n_layers={self.n_layers} needs images of at least "
                             f"{self.min_input_size}x{self.min_input_size} px, got {pair.shape[-2]}x{pair.shape[-1]}")
        return self.net(pair)


def min_input_size(n_layers: int) -> int:
    """Smallest image side a PatchGAN with `n_layers` accepts (4 * 2**n_layers; any size for 1x1)."""
    return 4 * 2**n_layers if n_layers else 1


def receptive_field(model: nn.Module) -> int:
    """Side of the input patch that one output pixel of a plain conv stack depends on.

    Walks the convolutions from the output back to the input: each layer widens the field to
    `(field - 1) * stride + kernel`.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layers")
    return field_of(convs)


def field_of(convs: list[nn.Module]) -> int:
    """Receptive field of one output pixel of a chain of convs (input first), in input pixels."""
    field = 1
    for conv in reversed(convs):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


PATCH_SIZE_TO_LAYERS = {1: 0, 16: 1, 70: 3, 286: 5}


def n_layers_for_patch(patch_size: int) -> int:
    """The `n_layers` giving a PatchGAN of receptive field `patch_size` (1, 16, 70 or 286)."""
    try:
        return PATCH_SIZE_TO_LAYERS[patch_size]
    except KeyError:
        raise ValueError(f"patch_size must be one of {sorted(PATCH_SIZE_TO_LAYERS)}, got {patch_size}") from None
