"""The ablations' variants, and how they become runs: which settings each changes, which share a run,
and how a budget of training images becomes epochs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from ..config import MACHINERY, TrainConfig, preset

# Training images each variant sees, sized so that the whole study takes about an hour on a 2-core
# CPU. The quick preset trains at ~34 images/s there (128 px, bf16; L1-only is faster with no D,
# the 1x1 D a little slower). The nine variants are 7 distinct runs (the base serves three
# groups): 3600 s / 7 runs ~ 510 s each, less ~40 s of loading and evaluation ~ 470 s x 34/s
# ~ 16,000. We take 15,000: ~3.7 passes over OpenMoji's 4,020 training pairs (4 epochs of 469
# steps of 8), enough for the variants to differ, far from converged (the paper trains 200 epochs).
BUDGET_IMAGES = 15_000
N_SAMPLES = 6  # validation sketches shown per variant (the same ones for every variant)
GROUPS = {"loss": "Objective (paper Fig. 4, Table 1)", "generator": "Generator architecture (paper Fig. 5)",
          "patch": "Discriminator patch size (paper Fig. 6, Table 3)"}
LAB_GROUPS = {"failure": "What goes wrong, and why (the GAN-dynamics lab, notebook 04)"}  # not the study's


@dataclass(frozen=True)
class Variant:
    """One point of an ablation: a name, its group, and its overrides of the base config."""

    name: str
    group: str
    overrides: dict = field(default_factory=dict)
    note: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("L1 only", "loss", {"use_gan": False}, "no discriminator at all"),
    Variant("cGAN only", "loss", {"lambda_l1": 0.0}, "lambda = 0: the generator never sees the target"),
    Variant("L1 + cGAN", "loss", {}, "the paper's objective (lambda = 100)"),
    Variant("encoder-decoder", "generator", {"skips": False}, "U-Net without skip connections"),
    Variant("U-Net", "generator", {}, "the paper's generator"),
    Variant("1x1 (PixelGAN)", "patch", {"patch_size": 1}, "D judges single pixels: colour only"),
    Variant("16x16", "patch", {"patch_size": 16}),
    Variant("70x70", "patch", {"patch_size": 70}, "the paper's PatchGAN"),
    Variant("286x286 (ImageGAN)", "patch", {"patch_size": 286},
            "at 128 px input a 286 px receptive field covers the whole image (and more): "
            "an image-level discriminator, as 286 is at the paper's 256 px"),
)


def select_variants(names) -> tuple[Variant, ...]:
    """The VARIANTS named (e.g. from `--variants "L1 only,16x16"`), in the study's order."""
    names = {n.strip() for n in names}
    unknown = names - {v.name for v in VARIANTS}
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}: choose from {[v.name for v in VARIANTS]}")
    return tuple(v for v in VARIANTS if v.name in names)


def base_config(**overrides) -> TrainConfig:
    """The quick preset (128 px, half-width nets, batch 8, bf16) that every variant starts from.

    Per-epoch validation inside `fit` is capped (it only feeds the log); the final evaluation
    covers the whole validation split.
    """
    return preset("quick", max_val_batches=2, n_samples=N_SAMPLES).replace(**overrides)


# --- planning: variants -> distinct runs ------------------------------------------------------------
def config_key(config: TrainConfig) -> str:
    """A hash of what decides a run's result: no MACHINERY, log_every or time budget; conditional_d only when off
    (old keys hold)."""
    data = {k: v for k, v in config.to_dict().items() if k not in (*MACHINERY, "log_every", "max_minutes")
            and not (k == "conditional_d" and v)}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def plan_runs(variants, base: TrainConfig) -> list[dict]:
    """Group the variants by resulting config: [{"run", "key", "config", "variants": [names]}].

    Variants whose overrides give identical configs share one run, named after the first of them."""
    runs: dict[str, dict] = {}
    for v in variants:
        if v.group not in GROUPS | LAB_GROUPS:
            raise ValueError(f"variant {v.name!r}: unknown group {v.group!r} (choose from {sorted(GROUPS | LAB_GROUPS)})")
        config = base.replace(**v.overrides)
        key = config_key(config)
        if key not in runs:
            runs[key] = {"run": slugify(v.name), "key": key, "config": config, "variants": []}
        runs[key]["variants"].append(v.name)
    names = [r["run"] for r in runs.values()]
    if len(set(names)) != len(names) or len({v.name for v in variants}) != len(list(variants)):
        raise ValueError(f"variant names must be unique, got {[v.name for v in variants]}")
    return list(runs.values())


def budget_schedule(config: TrainConfig, n_train: int, budget_images: int) -> TrainConfig:
    """Epochs and steps per epoch so that a run sees `budget_images` training images (rounded up).

    As many whole passes as needed, each capped to an equal share of the steps; about the last third
    of the epochs (rounded down: 4 epochs -> 3 + 1) decays the learning rate, as in the quick preset (3 + 2).
    """
    if budget_images < 1:
        raise ValueError(f"budget_images must be >= 1, got {budget_images}")
    steps = math.ceil(budget_images / config.batch_size)
    steps_per_pass = max(1, n_train // config.batch_size)  # the loader drops the last partial batch
    epochs = math.ceil(steps / steps_per_pass)
    per_epoch = math.ceil(steps / epochs)
    constant = math.ceil(2 * epochs / 3)
    return config.replace(epochs=constant, epochs_decay=epochs - constant, max_steps_per_epoch=per_epoch)
