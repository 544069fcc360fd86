"""pix2pix_lib: the library behind the pix2pix course (Isola et al., CVPR 2017).

The public API, grouped the way the course meets it. Notebooks import from here.
"""

from .config import PRESETS, TrainConfig, fast_mode, preset
from .imaging import normalize_to_neg_one_to_one, pil_to_tensor, tensor_to_pil, unnormalize_to_zero_to_one
from .models import (
    LAMBDA_L1,
    DownBlock,
    EncoderDecoderGenerator,
    GANLoss,
    PatchDiscriminator,
    UNetGenerator,
    UpBlock,
    build_generator,
    count_parameters,
    discriminator_objective,
    generator_objective,
    init_weights,
    n_layers_for_patch,
    receptive_field,
    unet_depth_for,
)

__all__ = [
    # configuration
    "TrainConfig", "PRESETS", "preset", "fast_mode",
    # images <-> tensors
    "pil_to_tensor", "tensor_to_pil", "normalize_to_neg_one_to_one", "unnormalize_to_zero_to_one",
    # networks and objective
    "DownBlock", "UpBlock", "UNetGenerator", "EncoderDecoderGenerator", "build_generator",
    "PatchDiscriminator", "receptive_field", "n_layers_for_patch", "unet_depth_for",
    "init_weights", "count_parameters", "GANLoss", "generator_objective", "discriminator_objective",
    "LAMBDA_L1",
]
__version__ = "0.1.0"
