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
import pkgutil
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


_quiet_start_up()  # a verb's module loads torch (seconds): Ctrl-C meanwhile is one line, not a traceback

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `--version` prints it

# The front door: name -> the module that defines it. Nothing is imported until first use
# (PEP 562), so `import pix2pix_lib` and the command line's --help load no torch; `p2p.<name>` and
# `from pix2pix_lib import <name>` import that one module then. A new name is one entry here and one
# import in __init__.pyi, what type checkers read (tests/test_cli_fast.py checks that both agree).
_FRONT_DOOR = {
    # settings (notebook 03); where a notebook keeps its data, runs and results
    "TrainConfig": "config", "preset": "config", "fast_mode": "config", "course_root": "course",
    # data (notebook 01)
    "PairedImageDataset": "data", "ensure_openmoji_dataset": "data", "download_dataset": "data",
    "prepare_masked_photos": "data",
    # networks and objective (notebook 02)
    "UNetGenerator": "models", "PatchDiscriminator": "models", "build_generator": "models",
    "count_parameters": "models", "GANLoss": "models", "generator_objective": "models",
    "discriminator_objective": "models",
    # training (notebook 03)
    "TrainingState": "train", "fit": "train", "evaluate_generator": "metrics",
    # generation (notebook 05); the canvas needs Jupyter's widget stack, a headless GPU box does not
    "preprocess_sketch": "preprocess", "colorize": "generate", "load_generator": "weights",
    "save_generator": "weights", "GeneratorCard": "weights", "SHIPPED_WEIGHTS": "weights", "DoodleCanvas": "canvas",
    # pictures
    "tensor_to_pil": "imaging", "pil_to_tensor": "imaging", "show_images": "viz",
}
__all__ = list(_FRONT_DOOR)

def __getattr__(name: str):
    """`p2p.<front-door name>` or `p2p.<module>` (p2p.viz, p2p.data, ...): imported on first use."""
    if name in _FRONT_DOOR:
        value = getattr(importlib.import_module(f".{_FRONT_DOOR[name]}", __name__), name)
    elif name in _submodules():
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_submodules()})


def _submodules() -> set[str]:
    """The package's modules and subpackages by name, read from its folder (a new module needs no entry)."""
    return {info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}
