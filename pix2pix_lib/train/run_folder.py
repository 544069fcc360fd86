"""The run folder as training writes it: the checks before the first step, and each epoch's files.

What a run folder holds and how it is read back: runs.py. A run folder is marked as the library's
(files.mark_ours) and locked while it trains; `fit` writes only runs.RUN_WRITES there.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import torch
from PIL import Image

from ..data.paired import load_rgb, split_pair_array
from ..files import OWNER_MARKER, DiskFullError, RefusedError, atomic_path, is_ours, read_json, shown
from ..imaging import make_sample_grid, save_image_atomic
from ..preprocess import measure_sketch_style
from ..runs import BEST_GENERATOR, CHECKPOINT, LAST_GENERATOR, LOG, STEPS, TENSORBOARD, VERDICTS, read_log, write_log
from ..weights import GeneratorCard, save_generator
from .checkpoint import save_checkpoint


class RunExistsError(FileExistsError):
    """A new run asked for in a folder that holds one: fit(resume=True) or the train verb's --resume continues it."""


def check_run_folder(out_dir: Path, *, resume: bool | str, writer: bool = True) -> None:
    """Refuse what `fit(..., resume=...)` must not do with `out_dir` (see fit's docstring).

    A run is resumed or written only in a folder this library made (its marker): a folder of other
    files is refused, also when it holds a `checkpoint.pt` copied there (its log.csv, generator.pt,
    samples/ are someone's own; `--resume that/checkpoint.pt --out new_folder` continues it elsewhere).
    writer: this process writes the folder (torchrun's rank 0); the others only check `resume`.
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    has_run = (out_dir / CHECKPOINT).is_file()
    if resume is True and not has_run:
        raise FileNotFoundError(f"{shown(out_dir)}: no {CHECKPOINT} to resume (is --out right?); drop --resume to "
                                "start a new run there")
    if not writer:
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise RefusedError(f"{shown(out_dir)}: --out names a file; a run needs a folder")
    others = out_dir.is_dir() and any(p.name != ".lock" for p in out_dir.iterdir())  # our own lock aside
    ours = is_ours(out_dir, "training run") or is_ours(out_dir, "experiment run")  # a study's runs are runs
    if has_run and not ours:
        raise RefusedError(f"{shown(out_dir)}: --out holds a {CHECKPOINT} but is no run folder this library made "
                           f"(no {OWNER_MARKER}); its files are left as they are. To continue that checkpoint, "
                           f"train into a new folder: --resume {shown(out_dir / CHECKPOINT)} --out "
                           f"{shown(out_dir.parent / (out_dir.name + '_resumed'))}")
    if has_run and not resume:
        raise RunExistsError(f"{shown(out_dir)} already holds a run ({CHECKPOINT}); resume it to continue, "
                             "or choose another output folder")
    if others and not ours:
        raise RefusedError(f"{shown(out_dir)}: --out is a folder of other files, not a run folder; a run writes "
                           f"{LOG}, {BEST_GENERATOR}, samples/ ... there. Choose a new folder, e.g. "
                           f"{shown(out_dir / 'run')}")
    for sub in ("samples", VERDICTS):  # a link there would have the run write into someone's folder
        if (out_dir / sub).is_symlink() or (out_dir / sub).exists() and not (out_dir / sub).is_dir():
            raise RefusedError(f"{shown(out_dir / sub)}: a link or file where the run writes its {sub}/; it is left "
                               "as it is. Move it away, or train into another --out")


# The temporary names of files.atomic_path (`.<name>.<8 of mkstemp's characters>.tmp`) for what a run
# writes, per sub-folder: a write killed half-way leaves one, and only these are ever removed.
_RUN_TEMPORARIES = {
    ".": r"(checkpoint|generator|best_generator)\.pt|(log|steps)\.csv|" + re.escape(OWNER_MARKER),
    "samples": r"epoch_\d{3,}\.png",
    VERDICTS: r"epoch_\d{3,}\.pt",
}


def remove_killed_writes(out_dir: Path) -> list[Path]:
    """Delete the temporary files that writes killed half-way left in a run folder; returns them.

    Call it holding the run's lock (no write of this run is under way then). Only regular files
    with exactly our temporary names go; a user's file, whatever its name, stays.
    """
    removed = []
    for sub, names in _RUN_TEMPORARIES.items():
        folder, temporary = out_dir / sub, re.compile(rf"\.(?:{names})\.[a-z0-9_]{{8}}\.tmp")
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            if temporary.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def remove_unstarted_run(out_dir: Path) -> None:
    """After a start that failed (bad data, Ctrl-C in the first epoch): remove the run folder `fit` made,
    when it holds nothing but what the start wrote (its marker, empty sub-folders). Anything else stays."""
    ours = {OWNER_MARKER, ".lock", "samples", VERDICTS, TENSORBOARD}
    if not out_dir.is_dir() or out_dir.is_symlink():
        return
    entries = list(out_dir.iterdir())
    if any(p.name not in ours or (p.is_dir() and (p.is_symlink() or any(p.iterdir()))) for p in entries):
        return
    for entry in entries:
        entry.rmdir() if entry.is_dir() else entry.unlink(missing_ok=True)
    out_dir.rmdir()


def save_epoch(model, out_dir: Path, grid: Image.Image, *, card: GeneratorCard, is_best: bool,
               verdicts: dict | None = None) -> Path:
    """An epoch's files, from the state the loop has just updated: sample grid, D's verdicts, generator
    (and best), steps.csv, the checkpoint, then the log. Returns the grid's path.

    steps.csv is written before the checkpoint, so it never lacks an epoch the checkpoint has; a
    resumed run drops its rows after the checkpoint's step (`resumed_step_log`).

    The checkpoint goes after the generators: a crash before it re-runs the epoch. A full disk at any
    of these writes stops the run with the previous checkpoint intact, so --resume repeats the epoch.
    """
    checkpoint = out_dir / CHECKPOINT
    try:
        samples_path = save_image_atomic(grid, out_dir / "samples" / f"epoch_{model.epoch:03d}.png")
        if verdicts is not None:
            (out_dir / VERDICTS).mkdir(exist_ok=True)
            with atomic_path(out_dir / VERDICTS / f"epoch_{model.epoch:03d}.pt") as tmp:
                torch.save({"epoch": model.epoch, **verdicts}, tmp)
        if is_best:
            save_generator(out_dir / BEST_GENERATOR, model.generator, card)
        save_generator(out_dir / LAST_GENERATOR, model.generator, card)
        if model.step_log:
            write_log(out_dir / STEPS, model.step_log)
        save_checkpoint(model, checkpoint)
        write_log(out_dir / LOG, model.history)
    except DiskFullError as err:
        if not checkpoint.is_file():
            raise
        raise DiskFullError(err.path, f"checkpoint ({checkpoint.name}, epoch {model.epoch - 1})",
                            then="--resume repeats this epoch") from None
    return samples_path


@torch.no_grad()
def epoch_samples(model, sample_a: torch.Tensor, sample_b: torch.Tensor, *,
                  verdicts: bool = True) -> tuple[Image.Image, dict | None]:
    """An epoch's sample grid (input | G(A) | target on the fixed validation pairs) and D's verdicts on them.

    Both in eval mode, as validation, then back to training (no parameter, statistic or random
    stream changes). The verdicts (None without a D, or when not asked for) are D's P(real) for
    every patch, real and generated: (N, h, w) each, fp16 on disk (only looked at).
    """
    G, D = model.generator, model.discriminator
    G.eval()
    with model.autocast():
        fake = G(model.to_device(sample_a)).float().cpu()
    G.train()
    grid, judged = make_sample_grid(sample_a, fake, sample_b), None
    if model.config.use_gan and verdicts:
        D.eval()
        with model.autocast():
            a, b, fake_b = (model.to_device(t) for t in (sample_a, sample_b, fake))
            judged = {"real": torch.sigmoid(D(a, b).float()), "fake": torch.sigmoid(D(a, fake_b).float())}
        D.train()
        judged = {k: v[:, 0].cpu().half() for k, v in judged.items()}
    return grid, judged


def check_data(model, train_set, val_set, data_root, *, skip_bad: bool, checkpoint: Path) -> dict:
    """Check every pair file before the first step, and that a resumed run sees the data it began with.

    Returns the run's data record (path, fingerprint, file count, licence, the sketches' style)
    for the checkpoint; the generator files carry the style and the licence.
    """
    for dataset in (train_set, val_set):
        if hasattr(dataset, "check_files"):
            dataset.check_files(skip_bad=skip_bad)
    record = {"path": str(Path(data_root).resolve()), "licence": data_licence(data_root)}
    if hasattr(train_set, "fingerprint") and hasattr(val_set, "fingerprint"):
        record["fingerprint"] = f"{train_set.fingerprint()}-{val_set.fingerprint()}"
        record["files"] = len(train_set) + len(val_set)
    style = sketch_style_of(train_set.files, getattr(train_set, "direction", "AtoB")) if getattr(train_set, "files", None) else None
    if style:  # photos as inputs, or inputs without ink: no sketch style to store
        record["sketch_style"] = style
    stored = model.data.get("fingerprint")
    # Checkpoints from before the content hash stored names and sizes only: that is still their data.
    if stored and record.get("fingerprint") and stored != record["fingerprint"] \
            and stored != f"{train_set.fingerprint(content=False)}-{val_set.fingerprint(content=False)}":
        raise ValueError(f"{shown(checkpoint)}: cannot resume on other data: the run was trained on "
                         f"{shown(model.data.get('path', '?'))} ({model.data.get('files')} files), {shown(data_root)} holds "
                         f"{record.get('files')} other or "
                         "changed files. Resume with the run's own data, or train into another output folder")
    return record


def sketch_style_of(files: list[Path], direction: str = "AtoB", n: int = 64) -> dict | None:
    """`preprocess.measure_sketch_style` of the input halves of `n` pair files spread over `files`."""
    picks = [files[i * len(files) // n] for i in range(min(n, len(files)))]
    halves = (split_pair_array(load_rgb(f), path=f)[0 if direction == "AtoB" else 1] for f in picks)
    return measure_sketch_style(half.mean(axis=2) / 255.0 for half in halves)


def data_licence(data_root: str | Path) -> dict:
    """The dataset's terms from its manifest.json (or ATTRIBUTION.txt), else {}: a generator's card.licence.

    Weights trained on CC BY-SA data are shared under the same terms: the file says so itself.
    """
    manifest = read_json(Path(data_root) / "manifest.json") or {}
    licence = {k: manifest[k] for k in ("attribution", "license", "license_url", "changes") if k in manifest}
    attribution = Path(data_root) / "ATTRIBUTION.txt"
    if not licence and attribution.is_file():
        licence = {"attribution": attribution.read_text(encoding="utf-8", errors="replace").strip()}
    return licence


def resume_logs(out_dir: Path, history: list[dict], step: int) -> list[dict]:
    """A resumed run's logs, made to agree with its checkpoint before the first step; returns steps.csv's rows.

    log.csv is rewritten from the checkpoint's history: a run killed between its checkpoint and its
    log left it a row short. steps.csv loses the rows after the checkpoint's step.
    """
    rows = resumed_step_log(out_dir, step)
    if history:
        write_log(out_dir / LOG, history)
    if rows:
        write_log(out_dir / STEPS, rows)
    return rows


def resumed_step_log(out_dir: Path, step: int) -> list[dict]:
    """steps.csv's rows up to `step` (a resumed run's checkpoint): the ones its training produced."""
    path = Path(out_dir) / STEPS
    if not step or not path.is_file():
        return []
    try:
        rows = [row for row in read_log(path) if row["step"] <= step]
        # read_log gives floats; the counters go back as the integers they were written as.
        return [{**row, "step": int(row["step"]), "steps": int(row["steps"])} for row in rows]
    except (ValueError, KeyError, csv.Error) as err:
        raise ValueError(f"{shown(path)}: not a steps log this library can read ({type(err).__name__}: {err}); "
                         "move it away to resume without the earlier steps' losses") from None
