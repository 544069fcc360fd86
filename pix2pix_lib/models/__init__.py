"""The networks and the objective of pix2pix: U-Net generator, PatchGAN discriminator, GAN + L1."""

from .blocks import (DownBlock, UpBlock, count_parameters, init_weights, norm_layer, recompute_batch_norm,
                     set_requires_grad, unet_depth_for)
from .discriminator import PatchDiscriminator, n_layers_for_patch, receptive_field
from .generator import EncoderDecoderGenerator, UNetGenerator, build_generator
from .losses import (
    LAMBDA_L1,
    DiscriminatorLoss,
    GANLoss,
    GeneratorLoss,
    discriminator_objective,
    generator_objective,
)
from . import summary  # noqa: F401 - layer tables and patch geometry (notebook 02): p2p.models.summary

__all__ = [
    "DownBlock", "UpBlock", "norm_layer", "init_weights", "count_parameters", "set_requires_grad", "recompute_batch_norm",
    "unet_depth_for", "UNetGenerator", "EncoderDecoderGenerator", "build_generator",
    "PatchDiscriminator", "receptive_field", "n_layers_for_patch",
    "GANLoss", "GeneratorLoss", "DiscriminatorLoss", "generator_objective", "discriminator_objective",
    "LAMBDA_L1",
]
