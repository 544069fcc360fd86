"""Training configuration: one dataclass, three presets. Every default says where it comes from."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass

from .models.discriminator import min_input_size, n_layers_for_patch


def fast_mode() -> bool:
    """True when PIX2PIX_FAST=1: tests and CI shrink sizes and step counts (never code paths)."""
    return os.environ.get("PIX2PIX_FAST", "") not in ("", "0", "false", "False")


def setting(default, help: str, choices: tuple[str, ...] | None = None):
    """A TrainConfig field with its meaning (and where its default comes from), shown by `train --help`;
    `choices`: the only values a string setting takes (--help lists them)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    # --- data
    image_size: int = setting(256, "paper: 256x256 crops")
    load_size: int | None = setting(None, "jitter: resize to this, then a random crop of --image-size (unset: 286/256 of it)")
    flip: bool = setting(True, "paper: random mirroring")
    direction: str = setting("AtoB", 'A (sketch) -> B (colour); "BtoA" swaps the halves', ("AtoB", "BtoA"))
    augment: str = setting("none", '"doodle": hand-drawn-looking sketches (see data/sketch_augment.py)',
                           ("none", "doodle"))
    # --- networks
    ngf: int = setting(64, "paper: 64 generator filters in the first layer")
    ndf: int = setting(64, "paper: 64 discriminator filters in the first layer")
    norm: str = setting("batch", 'paper: batch norm ("instance" also works, see the reference)', ("batch", "instance"))
    patch_size: int = setting(70, "paper: 70x70 PatchGAN (1, 16, 70 or 286)")
    skips: bool = setting(True, "U-Net (True) or the encoder-decoder ablation (False)")
    dropout: bool = setting(True, "paper: dropout as the noise z")
    # --- objective
    gan_mode: str = setting("vanilla", 'paper: BCE cGAN; "lsgan" also in the reference', ("vanilla", "lsgan"))
    lambda_l1: float = setting(100.0, "paper: lambda = 100")
    use_gan: bool = setting(True, 'False: the "L1 only" ablation')
    conditional_d: bool = setting(True, "paper: D sees the pair (A, B); False: D sees B alone, the paper's "
                                        "unconditional \"GAN\" rows (Table 1)")
    # --- optimisation
    batch_size: int = setting(1, "paper: batch 1 (batch norm then acts like instance norm)")
    lr_g: float = setting(2e-4, "paper: Adam lr 2e-4 for both networks")
    lr_d: float = setting(2e-4, "paper: the same for D (the original project slowed D: 5e-5)")
    beta1: float = setting(0.5, "paper: Adam beta1 = 0.5 (GANs oscillate with the usual 0.9)")
    epochs: int = setting(100, "reference default: 100 epochs at the initial lr ...")
    epochs_decay: int = setting(100, "... then 100 epochs of linear decay to 0")
    max_steps_per_epoch: int | None = setting(None, "cap an epoch (quick runs, fast mode)")
    max_minutes: float | None = setting(None, "a wall-clock budget for this session (a class period): the epoch "
                                              "under way ends early, is validated and saved; resume to train on "
                                              "from the next epoch. 0 (or unset): no limit")
    # --- machinery
    precision: str = setting("auto", "\"auto\": bf16 on CUDA (fp16 + scaler on old GPUs) and on CPUs with native bf16 "
                                     "(measured 1.4x faster on a 2-core CPU, val L1 within 1.2% of fp32), else fp32; or name one",
                             ("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = setting(False, "memory layout; helps on CUDA tensor cores, not on CPU")
    compile: bool = setting(False, "torch.compile: slower on a 2-core CPU, try on a GPU")
    device: str = setting("auto", '"auto": CUDA, then Apple MPS, then CPU')
    num_workers: int = setting(0, "DataLoader processes (0: load in the training process)")
    seed: int = setting(0, "seeds Python, NumPy and torch: runs repeat exactly on CPU")
    n_samples: int = setting(8, "validation pairs in the per-epoch sample grid (and D's verdicts on them)")
    log_every: int = setting(10, "losses averaged over every N steps (and an epoch's rest) go to steps.csv, rank 0's "
                                 "batches in a multi-process run; log.csv: one row per epoch")
    max_val_batches: int | None = setting(None, "cap validation (fast mode)")
    precise_bn_batches: int = setting(50, "before each validation, G's batch-norm statistics re-estimated on this "
                                          "many training batches (\"precise BN\"): eval mode then matches batch "
                                          "statistics (edges2shoes: 0.34 -> 0.11 L1). 0: keep the running averages")

    def __post_init__(self):
        self._check_types()
        self._check_ranges()
        if self.direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {self.direction!r}")
        if self.precision not in ("fp32", "bf16", "fp16", "auto"):
            raise ValueError(f"precision must be fp32, bf16, fp16 or auto, got {self.precision!r}")
        if self.image_size & (self.image_size - 1) or self.image_size < 8:
            raise ValueError(f"image_size must be a power of two >= 8, got {self.image_size}")
        smallest = min_input_size(n_layers_for_patch(self.patch_size))
        if self.image_size < smallest:
            raise ValueError(f"a {self.patch_size}x{self.patch_size} PatchGAN needs image_size >= {smallest}, "
                             f"got {self.image_size}: choose a smaller patch_size or larger images")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def _check_types(self) -> None:
        # From a checkpoint or a JSON file a field can arrive as anything: name it, not a TypeError later.
        kinds = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}
        for f in dataclasses.fields(self):
            value, annotation = getattr(self, f.name), str(f.type)
            if value is None and annotation.endswith("| None"):
                continue
            allowed = kinds[annotation.split(" |")[0]]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise ValueError(f"{f.name} must be {annotation.replace(' | None', ' or None')}, "
                                 f"got {value!r} ({type(value).__name__})")

    def _check_ranges(self) -> None:
        """Every number in a range where training means something; a bad one is named in one line."""
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"{name} must be {rule}, got {getattr(self, name)!r}")

        for name in ("lr_g", "lr_d", "lambda_l1", "beta1"):
            need(math.isfinite(getattr(self, name)), name, "a finite number")
        need(0 < self.lr_g <= 1, "lr_g", "in (0, 1]")
        need(0 < self.lr_d <= 1, "lr_d", "in (0, 1]")
        need(self.lambda_l1 >= 0, "lambda_l1", ">= 0")
        need(0 <= self.beta1 < 1, "beta1", "in [0, 1)")
        for name in ("ngf", "ndf"):
            need(1 <= getattr(self, name) <= 1024, name, "between 1 and 1024")
        need(self.epochs >= 0, "epochs", ">= 0")
        need(self.epochs_decay >= 0, "epochs_decay", ">= 0")
        need(self.epochs + self.epochs_decay >= 1, "epochs", "at least 1 together with epochs_decay (nothing to train)")
        need(0 <= self.precise_bn_batches <= 10_000, "precise_bn_batches", "between 0 and 10000")
        need(self.max_minutes is None or 0 <= self.max_minutes <= 10**6, "max_minutes", ">= 0 (0: no budget)")
        for name in ("max_steps_per_epoch", "max_val_batches"):
            need(getattr(self, name) is None or getattr(self, name) >= 1, name, ">= 1 (or unset)")
        need(self.load_size is None or self.image_size <= self.load_size <= 4 * self.image_size,
             "load_size", f"between image_size and 4 x image_size ({self.image_size}..{4 * self.image_size})")
        need(0 <= self.num_workers <= 256, "num_workers", "between 0 and 256")
        need(1 <= self.n_samples <= 64, "n_samples", "between 1 and 64")
        need(0 <= self.seed < 2**63, "seed", "between 0 and 2**63 - 1")
        for name, choices in (("norm", ("batch", "instance")), ("gan_mode", ("vanilla", "lsgan")),
                              ("augment", ("none", "doodle"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}: choose {' or '.join(map(repr, choices))}")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    def replace(self, **overrides) -> "TrainConfig":
        """A copy with some fields changed (unknown names raise)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, TrainConfig] = {
    # The paper's facades/maps settings (section 4, appendix 6.3).
    "paper": TrainConfig(),
    # The seed project's Carvana/edges2shoes runs: batch 4, a slower discriminator.
    "original": TrainConfig(batch_size=4, lr_g=1e-4, lr_d=5e-5),
    # Sized for a 2-core CPU on OpenMoji: recognisable colourings within ~10 minutes.
    # 128 px with half-width networks and bf16 autocast (~37 images/s here, vs ~26 in fp32):
    # 5 epochs of 4,020 pairs. The paper's objective, optimiser and schedule are unchanged.
    "quick": TrainConfig(image_size=128, ngf=32, ndf=32, batch_size=8, epochs=3, epochs_decay=2),
}


PRESET_ALIASES = {"seed": "original"}  # old name -> new name (deprecated)


def describe_field(name: str) -> str:
    """A TrainConfig field for --help: what it means (its `setting` help), then every preset's value."""
    values = ", ".join(f"{preset_name}: {getattr(config, name)}" for preset_name, config in PRESETS.items())
    return f"{field_notes()[name]} [{values}]"


def field_notes() -> dict[str, str]:
    """Each TrainConfig field's help: what it means and why its default."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}


def preset(name: str, **overrides) -> TrainConfig:
    """A preset by name ("paper", "original", "quick") with optional field overrides."""
    if name in PRESET_ALIASES:
        warnings.warn(f"preset {name!r} is now called {PRESET_ALIASES[name]!r} (a 'seed' preset read like the "
                      "random seed)", DeprecationWarning, stacklevel=2)
        name = PRESET_ALIASES[name]
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)


# Settings of the machine, not of what is learned: where and how fast the same arithmetic runs.
# (The ablation study's runs are the same run on any machinery; see experiments.config_key.)
MACHINERY = ("device", "num_workers", "compile", "channels_last")
