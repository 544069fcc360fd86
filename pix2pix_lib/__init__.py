"""pix2pix_lib: the library behind the pix2pix course (Isola et al., CVPR 2017).

The front door holds what a first session needs; everything else is `p2p.<module>.<name>`, and
the folder tree follows the paper (README, "The library"). Layers, lowest first (a module imports
only from layers below it; tests/test_layers.py checks it):

    folders                           folders processes share: printable names, locks, what a folder holds
    models/                           the networks and the objective
    config, files, runtime, strokes   small shared facts
    imaging, course, torchfile        every image file read and written; the course's own files; every .pt read
    data/, weights, preprocess        datasets; the two file formats; any sketch -> the input
    metrics, runs, pretrained         metrics; a run folder's files; the reference's pretrained models
    train, generate                   the algorithm; sketch -> colour image
    experiments, viz, canvas, checks  the ablations, figures, the drawing widget, the exercises' checks
    report                            reading the ablations back (notebook 06)
    cli/                              every command-line verb
"""

import importlib
import os
import signal
import sys


def _quiet_start_up() -> None:
    """`python -m pix2pix_lib` or `pix2pix`: Ctrl-C or SIGTERM while torch loads (seconds) -> one line.

    Nothing is written yet, so the process ends at once (130, 143) instead of printing an import's
    traceback; cli.main puts its own handlers in place of these. Imported as a library: nothing here.
    """
    argv = getattr(sys, "orig_argv", [])
    command = (sys.argv[:1] == ["-m"] and "-m" in argv and argv[argv.index("-m") + 1:][:1] == [__name__]) \
        or os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0] == "pix2pix"
    if not command:
        return

    def leave(signum, frame):
        os.write(2, b"terminated (SIGTERM)\n" if signum == signal.SIGTERM else b"interrupted\n")
        os._exit(128 + signum)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, leave)


_quiet_start_up()  # before the imports below: torch takes seconds to load

from . import config, course, data, files, imaging, metrics, models, runs, runtime, strokes, weights  # noqa: F401
from . import experiments, generate, report, train, viz  # noqa: F401
from .config import TrainConfig, fast_mode, preset
from .course import course_root
from .data import PairedImageDataset, download_dataset, ensure_openmoji_dataset, prepare_masked_photos
from .generate import colorize
from .preprocess import preprocess_sketch
from .imaging import pil_to_tensor, tensor_to_pil
from .metrics import evaluate_generator
from .models import (GANLoss, PatchDiscriminator, UNetGenerator, build_generator, count_parameters,
                     discriminator_objective, generator_objective)
from .train import TrainingState, fit
from .viz import show_images
from .weights import SHIPPED_WEIGHTS, load_generator, save_generator

__all__ = [
    # settings (notebook 03); where a notebook keeps its data, runs and results
    "TrainConfig", "preset", "fast_mode", "course_root",
    # data (notebook 01)
    "PairedImageDataset", "ensure_openmoji_dataset", "download_dataset", "prepare_masked_photos",
    # networks and objective (notebook 02)
    "UNetGenerator", "PatchDiscriminator", "build_generator", "count_parameters",
    "GANLoss", "generator_objective", "discriminator_objective",
    # training (notebook 03)
    "TrainingState", "fit", "evaluate_generator",
    # generation (notebook 05)
    "preprocess_sketch", "colorize", "load_generator", "save_generator", "SHIPPED_WEIGHTS", "DoodleCanvas",
    # pictures
    "tensor_to_pil", "pil_to_tensor", "show_images",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The canvas needs Jupyter's widget stack (anywidget); training on a headless GPU box does not,
    # so it is imported on first use rather than with the package.
    if name in ("DoodleCanvas", "canvas"):
        canvas = importlib.import_module(".canvas", __name__)
        return canvas.DoodleCanvas if name == "DoodleCanvas" else canvas
    raise AttributeError(f"module 'pix2pix_lib' has no attribute {name!r}")
