# What type checkers and editors see of pix2pix_lib/__init__.py, whose names are imported on first
# use (PEP 562). Keep it in step with _FRONT_DOOR there (tests/test_cli_fast.py checks it).
from . import canvas as canvas, checks as checks, cli as cli, config as config, course as course
from . import data as data, experiments as experiments, files as files, folders as folders
from . import generate as generate, imaging as imaging, metrics as metrics, models as models
from . import preprocess as preprocess, pretrained as pretrained, report as report, runs as runs
from . import runtime as runtime, strokes as strokes, torchfile as torchfile, train as train
from . import viz as viz, weights as weights
from .canvas import DoodleCanvas as DoodleCanvas
from .config import TrainConfig as TrainConfig, fast_mode as fast_mode, preset as preset
from .course import course_root as course_root
from .data import (PairedImageDataset as PairedImageDataset, download_dataset as download_dataset,
                   ensure_openmoji_dataset as ensure_openmoji_dataset, prepare_masked_photos as prepare_masked_photos)
from .generate import colorize as colorize
from .imaging import pil_to_tensor as pil_to_tensor, tensor_to_pil as tensor_to_pil
from .metrics import evaluate_generator as evaluate_generator
from .models import (GANLoss as GANLoss, PatchDiscriminator as PatchDiscriminator, UNetGenerator as UNetGenerator,
                     build_generator as build_generator, count_parameters as count_parameters,
                     discriminator_objective as discriminator_objective, generator_objective as generator_objective)
from .preprocess import preprocess_sketch as preprocess_sketch
from .train import TrainingState as TrainingState, fit as fit
from .viz import show_images as show_images
from .weights import (GeneratorCard as GeneratorCard, SHIPPED_WEIGHTS as SHIPPED_WEIGHTS,
                      load_generator as load_generator, save_generator as save_generator)

__version__: str
__all__: list[str]
