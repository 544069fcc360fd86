"""Training pix2pix: one step, one epoch, and the loop that evaluates, saves and resumes.

The algorithm (paper section 3.3), once per batch of pairs (A = sketch, B = colour target):

    fake_B = G(A)
    1. D step: D sees (A, B) as real and (A, fake_B.detach()) as fake; its loss is halved.
    2. G step: D frozen; G wants D to call (A, fake_B) real, and fake_B close to B in L1.

Everything else here is the machinery a real run needs: learning-rate schedule, checkpoints that
resume exactly (RNG states included), a CSV log, a sample grid per epoch, the best generator kept.
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
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import TrainConfig, resume_changes
from .data.loaders import calibration_loader, fixed_samples, make_datasets, make_train_loader
from .files import exclusive_lock, is_ours, mark_ours, reading, shown
from .metrics import evaluate_generator
from .models import (GANLoss, PatchDiscriminator, build_generator, discriminator_objective, generator_objective,
                     n_layers_for_patch, recompute_batch_norm, set_requires_grad)
from .runs import (CHECKPOINT, RUN_WRITES, EpochReport, check_data, check_run_folder, epoch_samples, epoch_summary,
                   remove_killed_writes, resume_logs, save_epoch)
from .runtime import (auto_precision, average_gradients, broadcast_buffers, mean_over_processes, rank_and_world,
                      seed_everything, select_device)
from .weights import (GeneratorCard, check_state_fits, checkpoint_card, load_training_state, read_checkpoint,
                      training_state_dict)

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def linear_decay(config: TrainConfig) -> Callable[[int], float]:
    """The reference's schedule, as a factor of the initial lr per epoch: 1 for `epochs`, then linear to 0."""
    return lambda epoch: 1.0 - max(0, epoch + 1 - config.epochs) / (config.epochs_decay + 1)


@dataclass
class TrainingState:
    """The trainable state of a run: networks, objective, optimisers, schedules, counters."""

    config: TrainConfig
    generator: nn.Module
    discriminator: nn.Module
    gan_loss: GANLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    epoch: int = 0  # epochs completed
    step: int = 0   # optimisation steps completed
    best_val_l1: float = math.inf
    history: list[dict] = field(default_factory=list)  # one row per epoch, as in log.csv
    step_log: list[dict] = field(default_factory=list)  # losses averaged per `log_every` steps, as in steps.csv
    scaler: torch.amp.GradScaler | None = None
    data: dict = field(default_factory=dict)  # what it trains on: path, fingerprint, files, licence

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device | str | None = None) -> "TrainingState":
        device = torch.device(device) if device is not None else select_device(config.device)
        if config.precision == "auto":
            config = config.replace(precision=auto_precision(device))
        generator = build_generator(image_size=config.image_size, ngf=config.ngf, norm=config.norm,
                                    dropout=config.dropout, skips=config.skips)
        discriminator = PatchDiscriminator(in_channels=6 if config.conditional_d else 3, ndf=config.ndf,
                                           n_layers=n_layers_for_patch(config.patch_size), norm=config.norm,
                                           conditional=config.conditional_d)
        memory_format = torch.channels_last if config.channels_last else torch.preserve_format
        generator.to(device, memory_format=memory_format)
        discriminator.to(device, memory_format=memory_format)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
        if config.compile:
            generator.compile()  # in place: parameter names (and checkpoints) stay the same
            discriminator.compile()
        # Fused Adam updates all tensors in one kernel: ~1.2x faster steps at 256 batch 1 on CPU,
        # where the per-tensor update was a fifth of the step (benchmarks/README.md).
        fused = device.type in ("cpu", "cuda")
        opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999), fused=fused)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999), fused=fused)

        scaler = None
        if config.precision == "fp16":
            scaler = torch.amp.GradScaler(device.type)  # fp16 gradients underflow without scaling
        return cls(config, generator, discriminator, GANLoss(config.gan_mode).to(device), opt_g, opt_d,
                   torch.optim.lr_scheduler.LambdaLR(opt_g, linear_decay(config)),
                   torch.optim.lr_scheduler.LambdaLR(opt_d, linear_decay(config)), device, scaler=scaler)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.config.precision]

    def autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.config.channels_last else torch.preserve_format
        return x.to(self.device, non_blocking=True, memory_format=fmt)

    def _backward_step(self, loss: torch.Tensor, network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        average_gradients(network)  # no-op in a single process
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)

    def training_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
        """One D step then one G step on a batch. Returns the losses as floats."""
        cfg = self.config
        with self.autocast():
            fake_b = self.generator(real_a)  # (B, 3, H, W)

        # 1. Discriminator: real pairs -> 1, generated pairs -> 0 (skipped for the "L1 only" ablation).
        if cfg.use_gan:
            set_requires_grad(self.discriminator, True)
            self.opt_d.zero_grad(set_to_none=True)
            with self.autocast():
                loss_d = discriminator_objective(self.discriminator, self.gan_loss, real_a, real_b, fake_b)
            self._backward_step(loss_d.total, self.discriminator, self.opt_d)

        # 2. Generator: fool the (frozen) discriminator and stay close to the target.
        set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            loss_g = generator_objective(self.discriminator, self.gan_loss, real_a, real_b, fake_b,
                                         lambda_l1=cfg.lambda_l1, use_gan=cfg.use_gan)
        self._backward_step(loss_g.total, self.generator, self.opt_g)
        if self.scaler is not None:
            self.scaler.update()
        self.step += 1

        losses = {"G_gan": loss_g.gan.item(), "G_L1": loss_g.l1.item()}
        if cfg.use_gan:
            losses |= {"D_real": loss_d.real.item(), "D_fake": loss_d.fake.item()}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(f"non-finite loss {bad} at epoch {self.epoch + 1}, step {self.step}: "
                                   f"training stopped; the last good checkpoint is kept. Try a lower lr "
                                   f"or fp32 precision (--precision fp32).")
        return losses

    def card(self) -> GeneratorCard:
        """The card of this state's generator as it is now (for `colorize`; its files carry the same)."""
        return checkpoint_card({"config": self.config.to_dict(), "data": self.data, "history": self.history,
                                "epoch": self.epoch, "step": self.step})

    # --- checkpoints (the format lives in weights.py) ---------------------------------------
    def state_dict(self) -> dict:
        return training_state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        load_training_state(self, state)


def load_checkpoint(path: str | Path, device: torch.device | str | None = None, **config_overrides) -> TrainingState:
    """Rebuild a TrainingState from a checkpoint (config included) to continue training.

    `config_overrides` change stored settings that may change between sessions (e.g. `epochs`
    to train longer); the schedules are rebuilt from the updated config.
    """
    return restore_checkpoint(read_checkpoint(path), path, device, **config_overrides)


def restore_checkpoint(state: dict, path: str | Path, device=None, **config_overrides) -> TrainingState:
    """`load_checkpoint` of contents already read (and checked) by `weights.read_checkpoint` from `path`."""
    model = TrainingState.from_config(TrainConfig.from_dict(state["config"]).replace(**config_overrides), device)
    # read_checkpoint checked every field and the generator; the discriminator is checked here.
    check_state_fits(model.discriminator, state["discriminator"], path, "discriminator")
    try:
        load_training_state(model, state, path)  # its own errors name the file and the field
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{shown(path)}: the checkpoint's optimiser, schedule or random state does not fit "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    return model


# --- one epoch, and the loop around it ----------------------------------------------------------
def train_one_epoch(model: TrainingState, loader: DataLoader, *, progress: bool = True) -> dict[str, float]:
    """Train for one pass over `loader` (or `max_steps_per_epoch` batches). Returns mean losses."""
    model.generator.train()
    model.discriminator.train()
    limit = model.config.max_steps_per_epoch
    total = min(len(loader), limit) if limit else len(loader)
    sums: dict[str, float] = {}
    window: dict[str, float] = {}  # the steps since the last row of steps.csv
    window_steps = 0
    images = 0
    bar = tqdm(loader, total=total, desc=f"epoch {model.epoch + 1}/{model.config.total_epochs}",
               disable=not progress or rank_and_world()[0] != 0, leave=False, dynamic_ncols=True)
    for i, batch in enumerate(bar):
        if i >= total:
            break
        losses = model.training_step(model.to_device(batch["A"]), model.to_device(batch["B"]))
        images += batch["A"].shape[0]
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
            window[k] = window.get(k, 0.0) + v
        window_steps += 1
        every = model.config.log_every
        if every and (window_steps == every or i + 1 == total):  # windows restart each epoch (as a resume does)
            model.step_log.append({"step": model.step, "epoch": model.epoch + (i + 1) / total, "steps": window_steps,
                                   **{f"loss_{k}": v / window_steps for k, v in window.items()}})
            window, window_steps = {}, 0
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
    bar.close()
    means = mean_over_processes({k: v / max(total, 1) for k, v in sums.items()})  # every rank's shard
    means["images"] = images
    return means


def fit(config: TrainConfig | dict, data_root: str | Path, out_dir: str | Path, *, resume: bool | str = False,
        resume_from: str | Path | None = None, on_epoch_end: Callable[[EpochReport], None] | None = None,
        progress: bool = True, datasets=None, skip_bad: bool = False) -> list[dict]:
    """Train `config` on the pairs in `data_root`, writing everything to `out_dir`.

    Per epoch: a sample grid (PNG), validation L1 / PSNR / SSIM, the generator's weights, the best
    generator by validation L1, a row in log.csv, and a full checkpoint for resuming.
    Returns the history (one dict per epoch, as in log.csv).

    resume: False starts a new run (refused when `out_dir` holds one, or holds files of its own);
    True continues the run in `out_dir` with its stored settings (refused when there is none);
    "auto" continues it when there is one, else starts. A resumed run may be lengthened or change
    its machinery (`resume_changes`), never its data (the files' fingerprint is in the checkpoint).
    resume_from: a checkpoint.pt elsewhere (copied, or in a folder the library did not make) to
    continue in `out_dir`, a new run folder; its best generator so far stays where it is.
    config: when resuming, a dict of changes to the run's own settings also does ({} keeps them).
    skip_bad: leave out pair files that fail the check made before the first step, instead of stopping.
    While it runs, `out_dir` is locked: a second training into it is refused. The checkpoint is read
    once, under the lock, and checked (weights.read_checkpoint) before any step.
    """
    out_dir, rank = Path(out_dir), rank_and_world()[0]
    source = Path(resume_from) if resume_from is not None else out_dir / CHECKPOINT
    elsewhere = resume_from is not None and source.resolve() != (out_dir / CHECKPOINT).resolve()
    folder_resume = False if elsewhere else (resume or resume_from is not None)
    if elsewhere and not source.is_file():
        raise FileNotFoundError(f"{shown(source)}: no checkpoint there to resume from")
    check_run_folder(out_dir, resume=folder_resume, writer=rank == 0)  # rank 0 writes; the others see it filling
    with exclusive_lock(out_dir / ".lock", what=shown(out_dir)) if rank == 0 else contextlib.nullcontext():
        check_run_folder(out_dir, resume=folder_resume, writer=rank == 0)  # again: another run may have just ended
        if rank == 0:
            remove_killed_writes(out_dir)  # we hold the lock: no write of this run is under way
        if elsewhere or (folder_resume and source.is_file()):
            model = _resume(source, config)
            if elsewhere:
                model.best_val_l1 = math.inf  # the best generator of this folder: among its own epochs
        elif isinstance(config, dict):
            raise ValueError(f"{shown(out_dir)}: no run to resume, so the settings must be a whole TrainConfig")
        else:
            seed_everything(config.seed)  # the same seed on every rank: identical initial weights
            model = TrainingState.from_config(config)
        if rank == 0 and not is_ours(out_dir, "experiment run"):  # an experiment's run keeps its own mark
            mark_ours(out_dir, "training run", writes=RUN_WRITES)
        try:
            with reading(data_root):  # a rebuild of the dataset is refused while this run reads it
                return _train(model, data_root, out_dir, on_epoch_end=on_epoch_end, progress=progress,
                              datasets=datasets, skip_bad=skip_bad)
        finally:  # a write cut short (Ctrl-C, SIGTERM) leaves no temporary file behind
            if rank == 0:
                remove_killed_writes(out_dir)


def _resume(path: Path, config: TrainConfig | dict) -> TrainingState:
    """The run saved at `path`, read once and checked before any step, with the changes `config` asks for.

    A run keeps what it learns with; only its length and the machinery may change (else: error).
    """
    state = read_checkpoint(path)
    stored = TrainConfig.from_dict(state["config"])
    requested = stored.replace(**config) if isinstance(config, dict) else config
    changes = resume_changes(stored, requested, shown(path))
    return restore_checkpoint(state, path, select_device(requested.device), **changes)


def _train(model: TrainingState, data_root, out_dir: Path, *, on_epoch_end, progress, datasets,
           skip_bad) -> list[dict]:
    """The epochs of `fit`, in a locked run folder: train, re-estimate BN, validate, save, report."""
    config, (rank, world), checkpoint_path = model.config, rank_and_world(), out_dir / CHECKPOINT
    train_set, val_set = datasets if datasets is not None else make_datasets(config, data_root)
    # check_data decodes every pair once and fills the cache with it: forked loader workers inherit it.
    model.data = check_data(model, train_set, val_set, data_root, skip_bad=skip_bad, checkpoint=checkpoint_path)
    val_loader = DataLoader(val_set, batch_size=max(config.batch_size, 8), shuffle=False,
                            num_workers=config.num_workers)
    sample_a, sample_b = fixed_samples(val_set, config.n_samples)  # the same pairs in every epoch's grid
    model.step_log = resume_logs(out_dir, model.history, model.step) if rank == 0 else []
    while model.epoch < config.total_epochs:
        if world > 1:
            # Each rank its own dropout and jitter stream, re-derived every epoch: the checkpoint holds
            # only rank 0's RNG state, and this makes a resumed multi-process run repeat the same draws.
            seed_everything(config.seed + 1000 * model.epoch + rank)
        start = time.perf_counter()
        lr_g = model.opt_g.param_groups[0]["lr"]
        losses = train_one_epoch(model, make_train_loader(config, train_set, model.epoch), progress=progress)
        model.sched_g.step()
        if config.use_gan:  # D never steps in the "L1 only" ablation
            model.sched_d.step()
        model.epoch += 1
        calibrate_batch_norm(model, train_set)  # every rank the same batches: identical statistics
        broadcast_buffers(model.generator)
        broadcast_buffers(model.discriminator)
        seconds = time.perf_counter() - start
        images = losses.pop("images") * world
        if rank != 0:
            continue
        # Validation and files: rank 0 only.
        val = evaluate_generator(model.generator, val_loader, device=model.device,
                                 max_batches=config.max_val_batches, autocast_dtype=model.autocast_dtype)
        grid, verdicts = epoch_samples(model, sample_a, sample_b)
        row = {"epoch": model.epoch, "step": model.step, **{f"loss_{k}": v for k, v in losses.items()},
               **{f"val_{k}": v for k, v in val.items()}, "lr_g": lr_g,
               "seconds": seconds, "images_per_s": images / seconds}
        is_best = val["l1"] < model.best_val_l1
        card = model.card().replace(metrics=dict(val))  # stored with the generators
        samples_path = save_epoch(model, out_dir, grid, row, is_best=is_best, card=card, verdicts=verdicts)
        if on_epoch_end is not None:
            on_epoch_end(EpochReport(model.epoch, config.total_epochs, model.step, losses, val, seconds,
                                     images / seconds, grid, samples_path, is_best, model.history, model))
        log.info(epoch_summary(row, config.total_epochs, is_best))  # one line per epoch, bars or not
    return model.history


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
