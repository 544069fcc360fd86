"""Command line: `python -m pix2pix_lib <verb> ...` (or the `pix2pix` script). The verbs live in
course_verbs.py (notebooks), data_verbs.py (download, download-model, prepare, pair, build-openmoji),
generator_verbs.py (generate, export: nothing of training is imported to colour a drawing) and
train_verbs.py (train, evaluate, experiments).

Each verb is an `add_<verb>(subparsers)` that declares its options and a `run_<verb>(args)` that
calls the library and prints. Errors the user can fix (a missing file, a refused folder, a bad
option) are one line naming the file and the problem, exit code 2. Ctrl-C exits 130 and SIGTERM
(docker stop, a Colab runtime reset, Slurm) 143, each with one line: both unwind like an exception,
so every file being written is removed and the last checkpoint stays whole.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading

# verb -> (its module here, the line --help lists it with), in the order --help lists them. Only the
# module of the verb being run is imported (the others would load torch, matplotlib, ... for nothing),
# so `--help` and `notebooks` answer at once. A new verb: one entry here, one in EXAMPLES, and
# add_<verb> + run_<verb> in its module (tests/test_cli_fast.py checks the lines here match).
VERBS = {
    "notebooks": ("course_verbs", "copy the course's notebooks into a folder of yours (for a pip install)"),
    "download": ("data_verbs", "download an official pix2pix dataset (or Carvana via Kaggle)"),
    "download-model": ("data_verbs", "download a pretrained pix2pix generator of the reference implementation"),
    "prepare": ("data_verbs", "make edge|photo pairs from photos + object masks, or masks it makes (Carvana-style)"),
    "pair": ("data_verbs", "pair two folders of images (A and B) by file name into the A|B format"),
    "build-openmoji": ("data_verbs", "build the offline default dataset (OpenMoji line art -> colour)"),
    "train": ("train_verbs", "train a pix2pix generator on A|B pairs"),
    "generate": ("generator_verbs", "colour a sketch (or a folder of sketches) with a generator"),
    "export": ("generator_verbs", "write a compact generator file from a run (e.g. fp16 for shipping)"),
    "evaluate": ("train_verbs", "metrics of a generator on a validation split (L1, PSNR, SSIM, FID, LPIPS)"),
    "experiments": ("train_verbs", "the paper's ablations in miniature (loss, generator, patch size)"),
}
EXAMPLES = {  # the last line of each verb's --help
    "notebooks": "my-course   (then: jupyter lab my-course/notebooks)",
    "download": "edges2shoes --root data",
    "download-model": "edges2shoes --out weights/pretrained",
    "prepare": "--images cars/photos --masks cars/masks --out data/cars --edge-style sketch",
    "pair": "--a sketches --b photos --out data/mine   (names match: cat.png with cat.jpg)",
    "build-openmoji": "--size 256   (writes the data dir's openmoji/, about a minute)",
    "train": "--preset quick --data data/openmoji --out runs/quick   (--resume continues it)",
    "generate": "my_doodle.png -o coloured.png --model shoes   (or a folder: doodles/ -o coloured/ --side-by-side)",
    "export": "runs/quick/best_generator.pt -o weights/mine.safetensors   (or --half; or -o mine.onnx --onnx)",
    "evaluate": "--weights runs/quick/best_generator.pt --data data/openmoji --json metrics.json",
    "experiments": "--data data/openmoji --out runs/experiments --results results/ablations.json",
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `verb`, only that verb's options are built (its module imported).

    `verb=""` builds none: enough for `--help`, `--version` and a mistyped verb.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_lib",
        description="pix2pix: data preparation, training and generation for the pix2pix course.",
    )
    version = importlib.import_module("..", __name__).__version__  # the package's one version number
    parser.add_argument("--version", action="version", version=f"pix2pix-course {version}")
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for name, (module, summary) in VERBS.items():
        if verb is None or verb == name:
            add_verb = getattr(importlib.import_module(f".{module}", __name__), "add_" + name.replace("-", "_"))
            add_verb(subparsers)
        else:  # listed in --help; its options are built when it is the verb run
            subparsers.add_parser(name, help=summary)
        subparsers.choices[name].epilog = f"example: python -m pix2pix_lib {name} {EXAMPLES[name]}"
    return parser


def _verb_in(argv: list[str]) -> str:
    """The verb of a command line ("" when there is none): the first word, as the top level has no
    options that take a value."""
    return next((word for word in argv if not word.startswith("-")), "")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds like Ctrl-C."""


@contextlib.contextmanager
def signals_unwind():
    """While a verb runs, SIGINT and SIGTERM raise KeyboardInterrupt / Terminated in this process.

    Slurm and Ctrl-C signal the whole process group. A forked worker of ours (a builder's pool) then
    exits at once, status 0: the parent, unwinding, shuts it down anyway. DataLoader workers end by
    torch's own handlers; once we stop, their exits and the errors of objects the signal cut short
    are no news (torch would print a traceback for each). A signal that lands in a `__del__` (which
    swallows exceptions; a DataLoader's shutdown waits in one) is raised again a moment later.
    Every handler is put back on the way out (a test or a notebook calling `main`).
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    owner, stop, saved = os.getpid(), {}, {}
    retry = hasattr(signal, "setitimer")

    def unwind(signum, frame):
        if os.getpid() != owner:
            os._exit(0)
        if not stop:
            stop["signum"] = signum
            saved["unraisable"], sys.unraisablehook = sys.unraisablehook, swallowed
            if hasattr(signal, "SIGCHLD"):
                saved[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *args: None)
            if retry:
                saved[signal.SIGALRM] = signal.signal(signal.SIGALRM, lambda *args: unwind(stop["signum"], args[1]))
        if retry and _in_finaliser(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise Terminated() if stop["signum"] == signal.SIGTERM else KeyboardInterrupt()

    def swallowed(unraisable):
        if retry and isinstance(unraisable.exc_value, KeyboardInterrupt):  # lost in a weakref callback, ...
            signal.setitimer(signal.ITIMER_REAL, 0.05)

    saved.update({s: signal.signal(s, unwind) for s in (signal.SIGINT, signal.SIGTERM)})
    try:
        yield
    finally:
        if stop:
            if retry:
                signal.setitimer(signal.ITIMER_REAL, 0)
            gc.collect()  # what the interruption left half-built goes now, quietly
            sys.unraisablehook = saved.pop("unraisable")
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _in_finaliser(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    with signals_unwind():
        try:
            argv = sys.argv[1:] if argv is None else list(argv)
            args = build_parser(_verb_in(argv)).parse_args(argv)
            print_library_logs()
            return args.func(args) or 0
        except KeyboardInterrupt as err:
            code = 143 if isinstance(err, Terminated) else 130
        except (OSError, ValueError, RuntimeError) as err:  # OSError: a missing file, an existing run, ...
            # Bad input is reported in one line that names the file and the problem, no traceback.
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 2
        gc.collect()  # the stopped frames go first: a progress bar they held draws its last before our line
        print("terminated (SIGTERM)" if code == 143 else "interrupted", file=sys.stderr)
        return code


class PrintHandler(logging.Handler):
    """Log records printed to whatever sys.stdout is when they happen (one line each)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stdout if record.levelno < logging.WARNING else sys.stderr)


def print_library_logs() -> None:
    """The library reports through `logging` (one line per epoch, skipped files); a command prints it."""
    logger = logging.getLogger("pix2pix_lib")
    if not any(isinstance(h, PrintHandler) for h in logger.handlers):
        logger.addHandler(PrintHandler())
    logger.setLevel(logging.INFO)


def one_line(err: BaseException) -> str:
    """The error's own message on one line, also when a DataLoader worker wrapped it in a traceback.

    Control characters left in it (a file name with a terminal escape) are shown escaped.
    """
    text = str(err)
    if "Original Traceback" in text:  # "Caught ValueError in DataLoader worker process 0. Original ..."
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].isidentifier() else last
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
