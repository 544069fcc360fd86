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
import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from PIL import Image
from tqdm.auto import tqdm

from .config import TrainConfig, resume_changes
from .data.paired import PairedImageDataset
from .data.sketch_augment import DoodleAugment
from .files import DiskFullError, RefusedError, atomic_path, exclusive_lock, is_ours, mark_ours, read_json
from .imaging import make_sample_grid, save_image_atomic
from .metrics import evaluate_generator
from .models import (GANLoss, PatchDiscriminator, build_generator, discriminator_objective, generator_objective,
                     n_layers_for_patch, set_requires_grad)
from .runtime import (auto_precision, average_gradients, broadcast_buffers, rank_and_world, rng_states,
                      seed_everything, select_device, set_rng_states)
from .weights import (check_finite, check_state_fits, checkpoint_config, read_checkpoint, save_checkpoint,
                      save_generator)

CHECKPOINT = "checkpoint.pt"           # everything needed to resume
BEST_GENERATOR = "best_generator.pt"   # generator with the lowest validation L1
LAST_GENERATOR = "generator.pt"        # generator after the last epoch
LOG = "log.csv"


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


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
    scaler: torch.amp.GradScaler | None = None
    data: dict = field(default_factory=dict)  # what it trains on: path, fingerprint, files, licence

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device | str | None = None) -> "TrainingState":
        device = torch.device(device) if device is not None else select_device(config.device)
        if config.precision == "auto":
            config = config.replace(precision=auto_precision(device))
        generator = build_generator(image_size=config.image_size, ngf=config.ngf, norm=config.norm,
                                    dropout=config.dropout, skips=config.skips)
        discriminator = PatchDiscriminator(ndf=config.ndf, n_layers=n_layers_for_patch(config.patch_size),
                                           norm=config.norm)
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

        def lr_factor(epoch: int) -> float:
            # Constant for `epochs`, then linear decay towards 0 over `epochs_decay` (reference schedule).
            return 1.0 - max(0, epoch + 1 - config.epochs) / (config.epochs_decay + 1)

        scaler = None
        if config.precision == "fp16":
            scaler = torch.amp.GradScaler(device.type)  # fp16 gradients underflow without scaling
        return cls(config, generator, discriminator, GANLoss(config.gan_mode).to(device), opt_g, opt_d,
                   torch.optim.lr_scheduler.LambdaLR(opt_g, lr_factor),
                   torch.optim.lr_scheduler.LambdaLR(opt_d, lr_factor), device, scaler=scaler)

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

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        generator = getattr(self.generator, "module", self.generator)  # unwrap DistributedDataParallel
        discriminator = getattr(self.discriminator, "module", self.discriminator)
        return {
            "format": "pix2pix-checkpoint/1",
            "config": self.config.to_dict(),
            "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch, "step": self.step, "best_val_l1": self.best_val_l1, "history": self.history,
            "data": self.data, "data_licence": self.data.get("licence", {}),
            "rng": rng_states(),
        }

    def load_state_dict(self, state: dict) -> None:
        getattr(self.generator, "module", self.generator).load_state_dict(state["generator"])
        getattr(self.discriminator, "module", self.discriminator).load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        # The optimisers' saved lr came from the stored schedule; recompute it from this config's, so a
        # finished run extended with more epochs does not go on at the lr its old schedule decayed to 0.
        for scheduler in (self.sched_g, self.sched_d):
            for group, base_lr, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                                              scheduler.lr_lambdas):
                group["lr"] = base_lr * factor(scheduler.last_epoch)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.best_val_l1 = state["epoch"], state["step"], state["best_val_l1"]
        self.history = list(state["history"])
        self.data = dict(state.get("data") or {})
        set_rng_states(state["rng"])


def load_checkpoint(path: str | Path, device: torch.device | str | None = None, **config_overrides) -> TrainingState:
    """Rebuild a TrainingState from a checkpoint (config included) to continue training.

    `config_overrides` change stored settings that may change between sessions (e.g. `epochs`
    to train longer); the schedules are rebuilt from the updated config.
    """
    state = read_checkpoint(path)
    model = TrainingState.from_config(TrainConfig.from_dict(state["config"]).replace(**config_overrides), device)
    for name in ("generator", "discriminator"):
        check_finite(state[name], path)
        check_state_fits(getattr(model, name), state[name], path, name)
    try:
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: the checkpoint's optimiser, schedule or random state does not fit "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    return model


# --- datasets and loaders -----------------------------------------------------------------------
def make_datasets(config: TrainConfig, data_root: str | Path):
    """(train, val) paired datasets for `config` (jitter and flips on train only)."""
    augment = DoodleAugment() if config.augment == "doodle" else None  # TrainConfig checked the name
    common = dict(image_size=config.image_size, direction=config.direction)
    train = PairedImageDataset(data_root, "train", load_size=config.load_size, flip=config.flip,
                               augment=augment, **common)
    val = PairedImageDataset(data_root, "val", flip=False, **common)
    return train, val


def make_train_loader(config: TrainConfig, dataset, epoch: int) -> DataLoader:
    """Shuffled batches; the order depends only on (seed, epoch), so a resumed run sees the same."""
    rank, world = rank_and_world()
    # Seeds the shuffle (one process) or the workers' jitter streams: different on every rank.
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 7919 * rank)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank,
                                                      shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=generator, num_workers=config.num_workers, drop_last=len(dataset) > config.batch_size,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


# --- one epoch, and the loop around it ----------------------------------------------------------
def train_one_epoch(model: TrainingState, loader: DataLoader, *, progress: bool = True) -> dict[str, float]:
    """Train for one pass over `loader` (or `max_steps_per_epoch` batches). Returns mean losses."""
    model.generator.train()
    model.discriminator.train()
    limit = model.config.max_steps_per_epoch
    total = min(len(loader), limit) if limit else len(loader)
    sums: dict[str, float] = {}
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
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
    bar.close()
    means = {k: v / max(total, 1) for k, v in sums.items()}
    if rank_and_world()[1] > 1:  # report losses averaged over every process's shard
        keys = sorted(means)
        values = torch.tensor([means[k] for k in keys], dtype=torch.float64)
        torch.distributed.all_reduce(values)
        means = dict(zip(keys, (values / rank_and_world()[1]).tolist()))
    means["images"] = images
    return means


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


def fit(config: TrainConfig, data_root: str | Path, out_dir: str | Path, *, resume: bool | str = False,
        on_epoch_end: Callable[[EpochReport], None] | None = None, progress: bool = True,
        datasets=None, skip_bad: bool = False) -> list[dict]:
    """Train `config` on the pairs in `data_root`, writing everything to `out_dir`.

    Per epoch: a sample grid (PNG), validation L1 / PSNR / SSIM, the generator's weights, the best
    generator by validation L1, a row in log.csv, and a full checkpoint for resuming.
    Returns the history (one dict per epoch, as in log.csv).

    resume: False starts a new run (refused when `out_dir` holds one, or holds files of its own);
    True continues the run in `out_dir` with its stored settings (refused when there is none);
    "auto" continues it when there is one, else starts. A resumed run may be lengthened or change
    its machinery (`resume_changes`), never its data (the files' fingerprint is in the checkpoint).
    skip_bad: leave out pair files that fail the check made before the first step, instead of stopping.
    While it runs, `out_dir` is locked: a second training into it is refused.
    """
    out_dir = Path(out_dir)
    rank, world = rank_and_world()
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    if resume is True and not (out_dir / CHECKPOINT).is_file():
        raise FileNotFoundError(f"{out_dir}: no {CHECKPOINT} to resume (is --out right?); drop --resume to "
                                "start a new run there")
    if rank == 0:  # the only process that writes the folder; the others see it while rank 0 fills it
        check_run_folder(out_dir)
    lock = exclusive_lock(out_dir / ".lock", what=out_dir) if rank == 0 else contextlib.nullcontext()
    with lock:
        return _fit(config, data_root, out_dir, resume=resume, on_epoch_end=on_epoch_end, progress=progress,
                    datasets=datasets, skip_bad=skip_bad)


def check_run_folder(out_dir: Path) -> None:
    """Refuse a run folder that is a file, or a folder of someone else's files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RefusedError(f"{out_dir}: --out names a file; a run needs a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (is_ours(out_dir) or (out_dir / CHECKPOINT).is_file()):
        raise RefusedError(f"{out_dir}: --out is a folder of other files, not a run folder; a run writes "
                           f"{LOG}, {BEST_GENERATOR}, samples/ ... there. Choose a new folder, e.g. {out_dir / 'run'}")


def _fit(config: TrainConfig, data_root, out_dir: Path, *, resume, on_epoch_end, progress, datasets,
         skip_bad) -> list[dict]:
    rank, world = rank_and_world()
    checkpoint_path = out_dir / CHECKPOINT
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{out_dir} already holds a run ({CHECKPOINT}); pass resume=True "
                              f"(--resume) to continue it, or choose another output folder")
    if resume and checkpoint_path.exists():
        # A run keeps what it learns with; only its length and the machinery may change (else: error).
        changes = resume_changes(checkpoint_config(checkpoint_path), config, checkpoint_path)
        model = load_checkpoint(checkpoint_path, select_device(config.device), **changes)
        config = model.config
    else:
        seed_everything(config.seed)  # the same seed on every rank: identical initial weights
        model = TrainingState.from_config(config)
    if rank == 0:
        mark_ours(out_dir, "training run")

    train_set, val_set = datasets if datasets is not None else make_datasets(config, data_root)
    model.data = check_data(model, train_set, val_set, data_root, skip_bad=skip_bad, checkpoint=checkpoint_path)
    if config.num_workers > 0 and getattr(train_set, "cache", False):
        # Decode every pair once here: each epoch's forked workers then inherit the cache
        # instead of decoding the whole dataset again.
        for i in tqdm(range(len(train_set)), desc="caching pairs", disable=not progress or rank != 0, leave=False):
            train_set.load_pair(i)
            if getattr(train_set, "cache_full", False):  # the rest would be decoded only to be thrown away
                break
    val_loader = DataLoader(val_set, batch_size=max(config.batch_size, 8), shuffle=False,
                            num_workers=config.num_workers)
    n = min(config.n_samples, len(val_set))
    sample_batch = [val_set[i] for i in range(n)]
    sample_a = torch.stack([s["A"] for s in sample_batch])
    sample_b = torch.stack([s["B"] for s in sample_batch])

    licence = {"data_licence": model.data["licence"]} if model.data.get("licence") else {}
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
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
        broadcast_buffers(model.generator)
        broadcast_buffers(model.discriminator)
        seconds = time.perf_counter() - start
        images = losses.pop("images") * world
        if rank != 0:
            continue
        # Validation and files: rank 0 only.
        generator = model.generator
        val = evaluate_generator(generator, val_loader, device=model.device, max_batches=config.max_val_batches,
                                 autocast_dtype=model.autocast_dtype)
        generator.eval()
        with torch.no_grad(), model.autocast():
            fake = generator(model.to_device(sample_a)).float().cpu()
        generator.train()
        grid = make_sample_grid(sample_a, fake, sample_b)
        row = {"epoch": model.epoch, "step": model.step, **{f"loss_{k}": v for k, v in losses.items()},
               **{f"val_{k}": v for k, v in val.items()}, "lr_g": lr_g,
               "seconds": seconds, "images_per_s": images / seconds}
        is_best = val["l1"] < model.best_val_l1
        meta = {"epoch": model.epoch, "step": model.step, "val": val, **licence}  # stored with the generators
        samples_path = save_epoch(model, out_dir, grid, row, is_best=is_best, meta=meta)
        if on_epoch_end is not None:
            on_epoch_end(EpochReport(model.epoch, config.total_epochs, model.step, losses, val, seconds,
                                     images / seconds, grid, samples_path, is_best, model.history))
        # One summary line per epoch, with or without progress bars.
        print(f"epoch {model.epoch}/{config.total_epochs}  " + "  ".join(f"{k} {v:.3f}" for k, v in losses.items())
              + f"  | val L1 {val['l1']:.4f} PSNR {val['psnr']:.2f} SSIM {val['ssim']:.3f}"
              + f"  | {images / seconds:.1f} img/s" + ("  *best*" if is_best else ""))
    return model.history


def save_epoch(model: TrainingState, out_dir: Path, grid: Image.Image, row: dict, *, is_best: bool, meta: dict) -> Path:
    """An epoch's files: sample grid, generator (and best), checkpoint last, then the log. Returns the grid's path.

    The checkpoint goes after the generators: a crash before it re-runs the epoch. A full disk at any
    of these writes stops the run with the previous checkpoint intact, so --resume repeats the epoch.
    """
    checkpoint = out_dir / CHECKPOINT
    try:
        samples_path = save_image_atomic(grid, out_dir / "samples" / f"epoch_{model.epoch:03d}.png")
        config = model.config.to_dict()
        if is_best:
            model.best_val_l1 = row["val_l1"]
            save_generator(out_dir / BEST_GENERATOR, model.generator, config, extra=meta)
        save_generator(out_dir / LAST_GENERATOR, model.generator, config, extra=meta)
        model.history.append(row)
        save_checkpoint(model, checkpoint)
        write_log(out_dir / LOG, model.history)
    except DiskFullError as err:
        if not checkpoint.is_file():
            raise
        raise DiskFullError(err.path, f"checkpoint ({checkpoint.name}, epoch {model.epoch - 1})",
                            then="--resume repeats this epoch") from None
    return samples_path


def check_data(model: TrainingState, train_set, val_set, data_root, *, skip_bad: bool, checkpoint: Path) -> dict:
    """Check every pair file before the first step, and that a resumed run sees the data it began with.

    Returns the run's data record (path, fingerprint, file count, licence) for the checkpoint.
    """
    for dataset in (train_set, val_set):
        if hasattr(dataset, "check_files"):
            dataset.check_files(skip_bad=skip_bad)
    record = {"path": str(Path(data_root).resolve()), **data_licence(data_root)}
    record["licence"] = record.pop("data_licence", {})
    if hasattr(train_set, "fingerprint") and hasattr(val_set, "fingerprint"):
        record["fingerprint"] = f"{train_set.fingerprint()}-{val_set.fingerprint()}"
        record["files"] = len(train_set) + len(val_set)
    stored = model.data.get("fingerprint")
    if stored and record.get("fingerprint") and stored != record["fingerprint"]:
        raise ValueError(f"{checkpoint}: cannot resume on other data: the run was trained on {model.data['path']} "
                         f"({model.data.get('files')} files), {data_root} holds {record.get('files')} other or "
                         "changed files. Resume with the run's own data, or train into another output folder")
    return record


def data_licence(data_root: str | Path) -> dict:
    """{"data_licence": {...}} from the dataset's manifest.json (or ATTRIBUTION.txt), else {}.

    Weights trained on CC BY-SA data are shared under the same terms: the file says so itself.
    """
    manifest = read_json(Path(data_root) / "manifest.json") or {}
    licence = {k: manifest[k] for k in ("attribution", "license", "license_url", "changes") if k in manifest}
    attribution = Path(data_root) / "ATTRIBUTION.txt"
    if not licence and attribution.is_file():
        licence = {"attribution": attribution.read_text(encoding="utf-8").strip()}
    return {"data_licence": licence} if licence else {}


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


