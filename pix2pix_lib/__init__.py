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

# looking inside the networks, and the figures the notebooks share (notebook 02)
from .models.summary import LayerRow, format_table, layer_table, patch_box, patch_geometry
from .viz import (
    credit,
    draw_box,
    draw_receptive_field,
    plot_loss_curves,
    plot_skip_comparison,
    show_images,
    show_patch_scores,
)

# data: the paired A|B format, official archives, Carvana-style preparation, OpenMoji (notebook 01)
from .data import (
    PairedImageDataset,
    build_openmoji_dataset,
    canny_edges,
    default_data_dir,
    download_dataset,
    ensure_openmoji_dataset,
    make_pair_image,
    masked_photo_to_pair,
    openmoji_attribution,
    prepare_masked_photos,
    render_openmoji,
    sketch_edges,
)

# generation: doodles -> colour images, the weights file, the drawing canvas (notebook 04)
from .data.sketch_augment import DoodleAugment, make_doodle_variants, perturb_sketch
from .generate import (
    SHIPPED_WEIGHTS,
    colorize,
    load_generator,
    preprocess_sketch,
    preprocess_steps,
    save_generator,
    side_by_side,
)

# training: the D/G step, the loop with checkpoints and exact resume (notebook 03)
from .train import Pix2Pix, fit, load_checkpoint, select_device

# evaluation and the paper's ablations in miniature (notebook 05)
from .experiments import VARIANTS, Variant, load_results, paper_checks, run_experiments
from .metrics import PerceptualMetrics, evaluate_generator, evaluate_predictions, evaluate_weights

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
    # looking inside the networks, and the figures the notebooks share (notebook 02)
    "LayerRow", "layer_table", "format_table", "patch_geometry", "patch_box",
    "show_images", "draw_box", "draw_receptive_field", "show_patch_scores", "plot_loss_curves",
    "plot_skip_comparison", "credit",
    # data: the paired A|B format, official archives, Carvana-style preparation, OpenMoji (notebook 01)
    "PairedImageDataset", "make_pair_image", "default_data_dir", "download_dataset",
    "prepare_masked_photos", "masked_photo_to_pair", "canny_edges", "sketch_edges",
    "build_openmoji_dataset", "ensure_openmoji_dataset", "render_openmoji", "openmoji_attribution",
    # generation: doodles -> colour images, the weights file, the drawing canvas (notebook 04)
    "preprocess_sketch", "preprocess_steps", "colorize", "load_generator", "save_generator",
    "side_by_side", "SHIPPED_WEIGHTS", "DoodleCanvas", "DoodleAugment", "perturb_sketch",
    "make_doodle_variants",
    # training: the D/G step, the loop with checkpoints and exact resume (notebook 03)
    "Pix2Pix", "fit", "load_checkpoint", "select_device",
    # evaluation and the paper's ablations in miniature (notebook 05)
    "evaluate_predictions", "evaluate_generator", "evaluate_weights", "PerceptualMetrics",
    "Variant", "VARIANTS", "run_experiments", "load_results", "paper_checks",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The canvas needs Jupyter's widget stack (anywidget); training on a headless GPU box does not,
    # so it is imported on first use rather than with the package.
    if name == "DoodleCanvas":
        from .canvas import DoodleCanvas

        return DoodleCanvas
    raise AttributeError(f"module 'pix2pix_lib' has no attribute {name!r}")
