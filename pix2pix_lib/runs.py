"""A run folder's names and its readers: what `fit` leaves there (train/run_folder.py writes it).

    <out>/checkpoint.pt       everything needed to resume (train/checkpoint.py)
    <out>/best_generator.pt   the generator with the lowest validation L1
    <out>/generator.pt        the generator after the last epoch
    <out>/log.csv             one row per epoch (losses, validation metrics, lr, speed)
    <out>/steps.csv           the losses averaged over every `log_every` steps (the curves of notebook 04)
    <out>/samples/epoch_NNN.png   input | generated | target on fixed validation pairs
    <out>/verdicts/epoch_NNN.pt   D's P(real) per patch on those pairs, real and generated (read_verdicts)

A run folder is marked as the library's (files.mark_ours) and locked while it trains. `fit` writes only
these names there (and their temporary `.<name>.XXXXXXXX.tmp` while writing); anything else a user
puts into the folder is left alone.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .files import RefusedError, atomic_path, is_ours
from .torchfile import load_plain

CHECKPOINT = "checkpoint.pt"           # everything needed to resume
BEST_GENERATOR = "best_generator.pt"   # generator with the lowest validation L1
LAST_GENERATOR = "generator.pt"        # generator after the last epoch
LOG = "log.csv"
STEPS = "steps.csv"
VERDICTS = "verdicts"
# What fit writes in a run folder (patterns, one per depth): listed in its marker (files.mark_ours).
# Exact shapes (epoch_005.png, epoch_1000.png), so a user's epoch_002_annotated.png is not taken for ours.
_EPOCH = ("epoch_[0-9][0-9][0-9]", "epoch_[0-9][0-9][0-9][0-9]")
TENSORBOARD = "tensorboard"  # train --tensorboard: its event files
RUN_WRITES = (CHECKPOINT, LAST_GENERATOR, BEST_GENERATOR, LOG, STEPS, "samples", VERDICTS, TENSORBOARD,
              *(f"samples/{e}.png" for e in _EPOCH), *(f"{VERDICTS}/{e}.pt" for e in _EPOCH),
              f"{TENSORBOARD}/events.out.tfevents.*")


# What an experiment run folder held before the marker existed (run_key.txt is the experiments' own).
_LEGACY_RUN_ENTRIES = {"run_key.txt", "result.json", "samples.png", CHECKPOINT, LAST_GENERATOR, BEST_GENERATOR,
                       LOG, "samples", ".lock"}


def is_experiment_run(run_dir: Path) -> bool:
    """True for a run folder of the ablation study (experiments/), marked or from before the marker."""
    entries = {p.name for p in run_dir.iterdir()}
    return is_ours(run_dir, "experiment run") or ("run_key.txt" in entries and entries <= _LEGACY_RUN_ENTRIES)


def check_study_folder(out_dir: Path) -> None:
    """Refuse an experiments --out that is not the study's own folder (it would be written into)."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not is_ours(out_dir, "experiments"))):
        legacy = out_dir.is_dir() and all(  # a study folder from before the marker: strips and run folders
            p.name in ("sketches.png", "targets.png", "ablations.json", "ablations.png")
            or (p.is_dir() and is_experiment_run(p)) for p in out_dir.iterdir())
        if not legacy:
            raise RefusedError(f"{out_dir}: --out is not a folder of the experiments (it holds other files); "
                               "it is left as it is. Choose a new folder, e.g. runs/experiments")


def write_log(path: Path, history: list[dict]) -> None:
    """Rewrite the CSV log from the history kept in the checkpoint (so the two never disagree)."""
    fields = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def read_log(path: str | Path) -> list[dict]:
    """The CSV log as a list of dicts of floats (for plots)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def read_verdicts(run_dir: str | Path) -> list[dict]:
    """D's verdicts, one dict per epoch: "epoch", "real" and "fake", each (n_samples, h, w) of P(real)."""
    files = sorted((Path(run_dir) / VERDICTS).glob("epoch_*.pt"))
    return [load_plain(f, "verdicts file") for f in files]
