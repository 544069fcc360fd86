"""`fit`: the loop that trains, validates, saves and resumes a run, and reports while it goes.

    fit(config, data, out)   check the folder, start or resume (checkpoint.resume), lock it, then:
        for each epoch:      train_one_epoch (the steps) -> precise BN -> validate -> save_epoch -> report
        every report_seconds: a progress report (losses, images/s, ETAs, a sample grid) to on_progress

A time budget (`config.max_minutes`) ends the epoch under way early; that epoch is validated and
saved like any other, so the best generator so far is on disk and `--resume` trains on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config import TrainConfig, preset
from ..data.loaders import make_datasets
from ..files import exclusive_lock, is_ours, mark_ours, reading, shown
from ..metrics import evaluate_generator
from ..models import recompute_batch_norm
from ..runs import CHECKPOINT, RUN_WRITES
from ..runtime import rank_and_world
from . import checkpoint
from .batches import calibration_loader, fixed_samples, make_train_loader, seed_everything
from .distributed import broadcast_buffers, mean_over_processes
from .run_folder import (check_data, check_run_folder, epoch_samples, remove_killed_writes, remove_unstarted_run,
                         resume_logs, save_epoch)
from .step import TrainingDiverged, TrainingState

log = logging.getLogger(__name__)


@dataclass
class EpochReport:
    """What the loop knows after an epoch; handed to `on_epoch_end` (the notebook plots it)."""

    epoch: int
    total_epochs: int
    step: int
    losses: dict[str, float]
    val: dict[str, float]
    seconds: float
    images_per_s: float
    samples: Image.Image  # PIL image: input | generated | target rows on the fixed validation batch
    samples_path: Path
    is_best: bool
    history: list[dict] = field(default_factory=list)
    model: object = None  # the live TrainingState: its networks as they are now (after precise BN)


@dataclass
class ProgressReport:
    """What the loop knows every `report_seconds` inside an epoch; handed to `on_progress`."""

    step: int
    epoch: float                  # epochs done, fractional (1.5: half-way through the second)
    total_epochs: int
    losses: dict[str, float]      # mean over the steps since the last report
    images_per_s: float
    eta_s: float                  # seconds to the end of the run at this speed (validation aside)
    budget_left_s: float | None   # seconds left of config.max_minutes; None: no budget
    samples: Image.Image          # input | generated (now, eval mode) | target on the fixed pairs
    history: list[dict] = field(default_factory=list)  # the epochs done, as in log.csv
    steps: list[dict] = field(default_factory=list)    # the step windows so far, as in steps.csv


def fit(config: TrainConfig | dict | None, data_root: str | Path, out_dir: str | Path, *,
        resume: bool | str = False, resume_from: str | Path | None = None,
        on_epoch_end: Callable[[EpochReport], None] | None = None,
        on_progress: Callable[[ProgressReport], None] | None = None, report_seconds: float = 30.0,
        progress: bool = True, datasets=None, skip_bad: bool = False) -> list[dict]:
    """Train `config` on the pairs in `data_root`, writing everything to `out_dir`; returns the history.

    Per epoch: a sample grid (PNG), validation L1 / PSNR / SSIM, the generator's weights, the best
    generator by validation L1, a row in log.csv, and a full checkpoint for resuming.

    config: a TrainConfig; or a dict of changes (None: none) to the run's own settings when it resumes
    one, else to the "quick" preset. A resumed run may be lengthened or change its machinery
    (`checkpoint.resume_changes`), never what it learns or its data.
    resume: False starts a new run (refused when `out_dir` holds one, or files of its own); True
    continues the run in `out_dir` (refused when there is none); "auto" continues it when there is one.
    resume_from: a checkpoint.pt (or the run folder holding it) elsewhere, to continue in `out_dir`,
    a new run folder; its best generator so far stays where it is.
    on_progress: every `report_seconds` of training, a ProgressReport (first curve and grid early).
    skip_bad: leave out pair files that fail the check made before the first step, instead of stopping.
    While it runs, `out_dir` is locked; a start that fails before the first epoch leaves no folder it made.
    """
    out_dir, rank = Path(out_dir), rank_and_world()[0]
    source = Path(resume_from) if resume_from is not None else out_dir / CHECKPOINT
    source = source / CHECKPOINT if source.is_dir() else source
    elsewhere = source.resolve() != (out_dir / CHECKPOINT).resolve()
    folder_resume = False if elsewhere else (resume or resume_from is not None)
    if elsewhere and not source.is_file():
        raise FileNotFoundError(f"{shown(source)}: no checkpoint there to resume from")
    if not isinstance(config, TrainConfig) and not (elsewhere or (folder_resume and source.is_file())):
        config = preset("quick", **(config or {}))  # a new run: its settings checked before anything is made
    check_run_folder(out_dir, resume=folder_resume, writer=rank == 0)  # rank 0 writes; the others see it filling
    made_here = rank == 0 and not out_dir.exists()
    with exclusive_lock(out_dir / ".lock", what=shown(out_dir)) if rank == 0 else contextlib.nullcontext():
        try:
            check_run_folder(out_dir, resume=folder_resume, writer=rank == 0)  # again: another run may have just ended
            if rank == 0:
                remove_killed_writes(out_dir)  # we hold the lock: no write of this run is under way
            if elsewhere or (folder_resume and source.is_file()):  # the run's own settings, changed as asked
                model = checkpoint.resume(source, config)
                model.best_val_l1 = math.inf if elsewhere else model.best_val_l1  # best of this folder's epochs
            else:
                config = config if isinstance(config, TrainConfig) else preset("quick", **(config or {}))  # raced
                seed_everything(config.seed)  # the same seed on every rank: identical initial weights
                model = TrainingState.from_config(config)
            if rank == 0 and not is_ours(out_dir, "experiment run"):  # an experiment's run keeps its own mark
                mark_ours(out_dir, "training run", writes=RUN_WRITES)
            try:
                with reading(data_root):  # a rebuild of the dataset is refused while this run reads it
                    return train(model, data_root, out_dir, on_epoch_end=on_epoch_end, on_progress=on_progress,
                                 report_seconds=report_seconds, progress=progress, datasets=datasets,
                                 skip_bad=skip_bad)
            finally:  # a write cut short (Ctrl-C, SIGTERM) leaves no temporary file behind
                if rank == 0:
                    remove_killed_writes(out_dir)
        except BaseException:  # cleaned up while we hold the lock: never another run's folder
            if made_here:
                remove_unstarted_run(out_dir)  # only a folder this call made, holding nothing but its marker
            raise


def train(model: TrainingState, data_root, out_dir: Path, *, on_epoch_end=None, on_progress=None,
          report_seconds: float = 30.0, progress: bool = True, datasets=None, skip_bad: bool = False) -> list[dict]:
    """The epochs of `fit`, in a locked run folder: train, re-estimate BN, validate, save, report."""
    config, (rank, world) = model.config, rank_and_world()
    train_set, val_set = datasets if datasets is not None else make_datasets(config, data_root)
    # check_data decodes every pair once and fills the cache with it: forked loader workers inherit it.
    model.data = check_data(model, train_set, val_set, data_root, skip_bad=skip_bad, checkpoint=out_dir / CHECKPOINT)
    val_loader = DataLoader(val_set, batch_size=max(config.batch_size, 8), shuffle=False,
                            num_workers=config.num_workers)
    samples = fixed_samples(val_set, config.n_samples)  # the same pairs in every epoch's grid
    model.step_log = resume_logs(out_dir, model.history, model.step) if rank == 0 else []
    clock = Clock(config, steps_per_epoch(config, make_train_loader(config, train_set, model.epoch)))
    if rank == 0:
        log.info(plan_line(model, out_dir, len(train_set), len(val_set), clock))
    steps_done = clock.steps_per_epoch
    while model.epoch < config.total_epochs and not (clock.steps and clock.over_budget()):  # >= 1 step a session
        if world > 1:
            # Each rank its own dropout and jitter stream, re-derived every epoch: the checkpoint holds
            # only rank 0's RNG state, and this makes a resumed multi-process run repeat the same draws.
            seed_everything(config.seed + 1000 * model.epoch + rank)
        start, lr_g = time.perf_counter(), model.opt_g.param_groups[0]["lr"]
        reporter = (lambda losses, at: on_progress(progress_report(model, clock, losses, at, samples))) \
            if on_progress is not None and rank == 0 else None
        losses = train_one_epoch(model, make_train_loader(config, train_set, model.epoch), progress=progress,
                                 clock=clock, report=reporter, report_seconds=report_seconds)
        model.sched_g.step()
        if config.use_gan:  # D never steps in the "L1 only" ablation
            model.sched_d.step()
        model.epoch += 1
        calibrate_batch_norm(model, train_set)  # every rank the same batches: identical statistics
        broadcast_buffers(model.generator)
        broadcast_buffers(model.discriminator)
        seconds, images, steps_done = time.perf_counter() - start, losses.pop("images") * world, losses.pop("steps")
        if rank != 0:
            continue
        # Validation, the files and the reports: rank 0 only. The loop owns the history and the best.
        val = evaluate_generator(model.generator, val_loader, device=model.device,
                                 max_batches=config.max_val_batches, autocast_dtype=model.autocast_dtype)
        grid, verdicts = epoch_samples(model, *samples)
        row = {"epoch": model.epoch, "step": model.step, **{f"loss_{k}": v for k, v in losses.items()},
               **{f"val_{k}": v for k, v in val.items()}, "lr_g": lr_g,
               "seconds": seconds, "images_per_s": images / seconds}
        is_best = val["l1"] < model.best_val_l1
        model.history.append(row)
        model.best_val_l1 = min(model.best_val_l1, val["l1"])
        samples_path = save_epoch(model, out_dir, grid, card=model.card(), is_best=is_best, verdicts=verdicts)
        if on_epoch_end is not None:
            on_epoch_end(EpochReport(
                epoch=model.epoch, total_epochs=config.total_epochs, step=model.step, losses=losses, val=val,
                seconds=seconds, images_per_s=images / seconds, samples=grid, samples_path=samples_path,
                is_best=is_best, history=model.history, model=model))
        log.info(epoch_summary(row, config.total_epochs, is_best))  # one line per epoch, bars or not
    if clock.budget_spent and model.epoch < config.total_epochs and rank == 0:
        cut = f"{steps_done} of {clock.steps_per_epoch} steps" if steps_done < clock.steps_per_epoch else None
        log.info(f"time budget of {config.max_minutes:g} min reached: training ended after epoch {model.epoch} of "
                 f"{config.total_epochs} (step {model.step}{f'; that epoch was cut after {cut}' if cut else ''}); "
                 f"best validation L1 {model.best_val_l1:.4f} in {shown(out_dir)}. Resume to train on from epoch "
                 f"{model.epoch + 1} (--resume; --max-minutes 0 for no budget)")
    return model.history


def train_one_epoch(model: TrainingState, loader: DataLoader, *, progress: bool = True, clock: "Clock | None" = None,
                    report: Callable[[dict, int], None] | None = None, report_seconds: float = 30.0) -> dict[str, float]:
    """Train for one pass over `loader` (or `max_steps_per_epoch` batches, or until the time budget
    is spent). Returns the mean losses, "images" and "steps"."""
    model.generator.train()
    model.discriminator.train()
    total = steps_per_epoch(model.config, loader)
    clock = clock or Clock(model.config, total)
    sums, window, since_report = {}, {}, {}  # window: the steps since the last row of steps.csv
    done = window_steps = images = since_steps = 0
    every = model.config.log_every
    bar = tqdm(loader, total=total, desc=f"epoch {model.epoch + 1}/{model.config.total_epochs}",
               disable=not progress or rank_and_world()[0] != 0, leave=False, dynamic_ncols=True)
    for i, batch in enumerate(bar):
        if i >= total or (done and clock.over_budget()):  # at least one step: an epoch is never empty
            break
        losses = model.training_step(model.to_device(batch["A"]), model.to_device(batch["B"]))
        images, done, window_steps = images + batch["A"].shape[0], done + 1, window_steps + 1
        for totals in (sums, window, since_report):
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v
        clock.tick(batch["A"].shape[0])
        if every and (window_steps == every or i + 1 == total):  # windows restart each epoch (as a resume does)
            model.step_log.append({"step": model.step, "epoch": model.epoch + (i + 1) / total, "steps": window_steps,
                                   **{f"loss_{k}": v / window_steps for k, v in window.items()}})
            window, window_steps = {}, 0
        bar.set_postfix({**{k: f"{v:.3f}" for k, v in losses.items()}, **clock.postfix(model.epoch, i + 1)},
                        refresh=False)
        since_steps += 1
        if report is not None and clock.report_due(report_seconds):
            report({k: v / since_steps for k, v in since_report.items()}, i + 1)
            since_report, since_steps = {}, 0
    bar.close()
    if window_steps and every:  # an epoch cut short by the budget: its last window too
        model.step_log.append({"step": model.step, "epoch": model.epoch + done / total, "steps": window_steps,
                               **{f"loss_{k}": v / window_steps for k, v in window.items()}})
    means = mean_over_processes({k: v / max(done, 1) for k, v in sums.items()})  # every rank's shard
    means["images"], means["steps"] = images, done
    return means


FIRST_REPORT_S = 10.0  # seconds of training before the first progress report (then every report_seconds)


class Clock:
    """This session's wall time: the budget (config.max_minutes), the speed and the ETAs the bar shows."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.start = self.last_report = time.monotonic()
        self.budget_s = config.max_minutes * 60 if config.max_minutes else None
        self.steps_per_epoch, self.total_epochs = steps_per_epoch, config.total_epochs
        self.steps = self.images = self.steps_since_report = 0
        self.budget_spent = self.reported = False

    def tick(self, images: int) -> None:
        self.steps, self.images, self.steps_since_report = self.steps + 1, self.images + images, self.steps_since_report + 1

    def over_budget(self) -> bool:
        """True once the budget is spent, the same answer on every torchrun process."""
        over = self.budget_s is not None and time.monotonic() - self.start >= self.budget_s
        if self.budget_s is not None and rank_and_world()[1] > 1:  # agreed every 10 steps: no sync per step
            over = self.steps % 10 == 0 and mean_over_processes({"over": float(over)})["over"] > 0
        self.budget_spent = self.budget_spent or over
        return self.budget_spent

    def eta_s(self, epoch: int, step_in_epoch: int) -> float:
        left = self.steps_per_epoch * (self.total_epochs - epoch) - step_in_epoch
        return left * (time.monotonic() - self.start) / max(self.steps, 1)

    def budget_left_s(self) -> float | None:
        return None if self.budget_s is None else max(0.0, self.budget_s - (time.monotonic() - self.start))

    def images_per_s(self) -> float:
        return self.images / max(time.monotonic() - self.start, 1e-9)

    def postfix(self, epoch: int, step_in_epoch: int) -> dict[str, str]:
        left = {"run ETA": minutes(self.eta_s(epoch, step_in_epoch))}
        return left | ({"budget left": minutes(self.budget_left_s())} if self.budget_s is not None else {})

    def report_due(self, every: float) -> bool:
        # The first report comes early: a class sees a curve and a grid moving within the first minute.
        wait = every if self.reported else min(every, FIRST_REPORT_S)
        due = time.monotonic() - self.last_report >= wait
        if due:
            self.last_report, self.reported = time.monotonic(), True
        return due


def progress_report(model: TrainingState, clock: Clock, losses: dict, in_epoch: int, samples) -> ProgressReport:
    """A ProgressReport now: the fixed pairs through G in eval mode (nothing of the run's state changes)."""
    grid, _ = epoch_samples(model, *samples, verdicts=False)
    report = ProgressReport(step=model.step, epoch=model.epoch + in_epoch / max(clock.steps_per_epoch, 1),
                            total_epochs=model.config.total_epochs, losses=losses, images_per_s=clock.images_per_s(),
                            eta_s=clock.eta_s(model.epoch, in_epoch), budget_left_s=clock.budget_left_s(),
                            samples=grid, history=list(model.history), steps=list(model.step_log))
    clock.steps_since_report = 0
    return report


def steps_per_epoch(config: TrainConfig, loader: DataLoader) -> int:
    return min(len(loader), config.max_steps_per_epoch) if config.max_steps_per_epoch else len(loader)


def minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def plan_line(model: TrainingState, out_dir: Path, n_train: int, n_val: int, clock: Clock) -> str:
    """What the run is about to do, before its first step: where, how, on what, how long."""
    config, world = model.config, rank_and_world()[1]
    start = f"resuming at epoch {model.epoch + 1}" if model.epoch else "epoch 1"
    return (f"training into {shown(out_dir)}: {model.device} ({config.precision}"
            f"{f', {world} processes' if world > 1 else ''}), {n_train} training / {n_val} validation pairs, "
            f"{clock.steps_per_epoch} steps of {config.batch_size} per epoch, {start} of {config.total_epochs}"
            + (f", time budget {config.max_minutes:g} min" if config.max_minutes else ""))


def epoch_summary(row: dict, total_epochs: int, is_best: bool) -> str:
    """The one line per epoch: losses | validation | speed."""
    losses = "  ".join(f"{k[5:]} {v:.3f}" for k, v in row.items() if k.startswith("loss_"))
    return (f"epoch {int(row['epoch'])}/{total_epochs}  {losses}  | val L1 {row['val_l1']:.4f} "
            f"PSNR {row['val_psnr']:.2f} SSIM {row['val_ssim']:.3f}  | {row['images_per_s']:.1f} img/s"
            + ("  *best*" if is_best else ""))


def calibrate_batch_norm(model: TrainingState, train_set) -> None:
    """Precise BN before G is validated and saved (`config.precise_bn_batches`; models.recompute_batch_norm).

    Its batches are drawn from a forked, seeded RNG: the training run's own random stream (and so
    an exact resume) is untouched, and a resumed run recomputes the same statistics.
    """
    n = model.config.precise_bn_batches
    if n == 0:
        return
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(model.config.seed * 7919 + model.epoch)
        loader = calibration_loader(model.config, train_set, model.epoch)
        with model.autocast():
            recompute_batch_norm(model.generator, (model.to_device(b["A"]) for b in islice(loader, n)))
    if not all(bool(torch.isfinite(b).all()) for b in model.generator.buffers() if b.is_floating_point()):
        raise TrainingDiverged(f"non-finite batch-norm statistics after epoch {model.epoch}: training stopped; "
                               "the last good checkpoint is kept. Check the data, or try --precision fp32")
