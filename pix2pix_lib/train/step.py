"""One training step of pix2pix, and the state it changes.

The algorithm (paper section 3.3), once per batch of pairs (A = sketch, B = colour target):

    fake_B = G(A)
    1. D step: D sees (A, B) as real and (A, fake_B.detach()) as fake; its loss is halved.
    2. G step: D frozen; G wants D to call (A, fake_B) real, and fake_B close to B in L1.

`TrainingState` holds everything a run changes (networks, optimisers, schedules, counters, the
history); checkpoint.py writes and reads it, loop.py runs it over epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import TrainConfig
from ..models import (GANLoss, PatchDiscriminator, build_generator, discriminator_objective, generator_objective,
                      n_layers_for_patch, set_requires_grad)
from ..runtime import auto_precision, select_device
from ..weights import GeneratorCard, checkpoint_card
from .distributed import average_gradients


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
