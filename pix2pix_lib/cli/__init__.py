"""Command line: `python -m pix2pix_lib <verb> ...` (or the `pix2pix` script). The verbs live in
data_verbs.py (download, download-model, prepare, build-openmoji, notebooks) and model_verbs.py
(train, generate, export, evaluate, experiments).

Each verb is an `add_<verb>(subparsers)` that declares its options and a `run_<verb>(args)` that
calls the library and prints. Errors the user can fix (a missing file, a refused folder, a bad
option) are one line naming the file and the problem, exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from ..runtime import print_library_logs
from .data_verbs import add_build_openmoji, add_download, add_download_model, add_notebooks, add_prepare
from .model_verbs import add_evaluate, add_experiments, add_export, add_generate, add_train


EXAMPLES = {  # the last line of each verb's --help
    "notebooks": "my-course   (then: jupyter lab my-course/notebooks)",
    "download": "edges2shoes --root data",
    "download-model": "edges2shoes --out weights/pretrained",
    "prepare": "--images cars/photos --masks cars/masks --out data/cars --edge-style sketch",
    "build-openmoji": "--size 256   (writes the data dir's openmoji/, about a minute)",
    "train": "--preset quick --data data/openmoji --out runs/quick   (--resume continues it)",
    "generate": "my_doodle.png -o coloured.png   (or a folder: doodles/ -o coloured/ --side-by-side)",
    "export": "runs/quick/best_generator.pt -o weights/mine.pt --half",
    "evaluate": "--weights runs/quick/best_generator.pt --data data/openmoji --json metrics.json",
    "experiments": "--data data/openmoji --out runs/experiments --results results/ablations.json",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_lib",
        description="pix2pix: data preparation, training and generation for the pix2pix course.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for add_verb in (add_notebooks, add_download, add_download_model, add_prepare, add_build_openmoji, add_train,
                     add_generate, add_export, add_evaluate, add_experiments):  # the order --help lists them
        add_verb(subparsers)
    for verb, example in EXAMPLES.items():
        subparsers.choices[verb].epilog = f"example: python -m pix2pix_lib {verb} {example}"
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print_library_logs()
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as err:  # OSError: a missing file, an existing run, ...
        # Bad input is reported in one line that names the file and the problem, no traceback.
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


def one_line(err: BaseException) -> str:
    """The error's own message on one line, also when a DataLoader worker wrapped it in a traceback."""
    text = str(err)
    if "Original Traceback" in text:  # "Caught ValueError in DataLoader worker process 0. Original ..."
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].isidentifier() else last
    return " ".join(text.split())
