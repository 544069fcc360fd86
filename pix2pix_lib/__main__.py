"""Command line: `python -m pix2pix_lib <verb> ...` (or the `pix2pix` script).

Each verb lives beside the code it drives; its module exposes `register_cli(subparsers)`, which
adds a sub-parser and sets `func` to the function that runs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that provide verbs, in the order `--help` lists them.
VERB_MODULES = [
    "pix2pix_lib.data.download",
    "pix2pix_lib.data.masked_photos",
    "pix2pix_lib.data.openmoji",
    "pix2pix_lib.train",
    "pix2pix_lib.generate",
    "pix2pix_lib.metrics",       # evaluate
    "pix2pix_lib.experiments",   # experiments
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_lib",
        description="pix2pix: data preparation, training and generation for the pix2pix course.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for name in VERB_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
