"""The checkpoint: everything a run needs to go on exactly where it stopped, and the rule for resuming.

    checkpoint.pt   {"format", "config": the whole TrainConfig, both networks, optimisers, schedules,
                     scaler, epoch, step, best_val_l1, history, rng, data (path, fingerprint, licence,
                     sketch_style)}

Read through `torchfile.load_plain` (plain tensors only), every field checked against CHECKPOINT
(`check_record`), the generator against the network its config describes, the discriminator and
Adam's moments against theirs: a damaged file is refused in one line naming it, before any step.

The resume rule: a run keeps what it learns with (networks, data, objective, optimiser, seed);
only its length, precision, machinery and reporting may change (RESUME_MAY_CHANGE).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import torch

from ..config import MACHINERY, TrainConfig
from ..files import atomic_path, shown
from ..runtime import select_device
from ..torchfile import check_record, load_plain
from ..weights import BEST, DATA, EPOCH, GENERATOR_KEYS, HISTORY, STEP, TENSORS, check_state_fits
from ..models import build_generator
from .step import TrainingState

CHECKPOINT_FORMAT = "pix2pix-checkpoint/1"
OPTIMISER = {"state": dict, "param_groups": [{"params": [int], "lr": (int, float)}]}
SCHEDULE = {"last_epoch": int, "base_lrs": [(int, float)]}
CHECKPOINT = {"format": str, "config": dict, "generator": TENSORS, "discriminator": TENSORS, "opt_g": OPTIMISER,
              "opt_d": OPTIMISER, "sched_g": SCHEDULE, "sched_d": SCHEDULE, "scaler?": (dict, type(None)),
              "epoch": EPOCH, "step": STEP, "best_val_l1": BEST, "history": HISTORY, "data?": DATA,
              "data_licence?": dict,  # written before the licence lived in "data" alone
              "rng": {"torch": torch.Tensor, "numpy": list, "python": list, "cuda": list}}
# Settings a resumed run may change: its length, its numeric precision, the machinery, the reporting.
RESUME_MAY_CHANGE = ("epochs", "epochs_decay", "precision", *MACHINERY, "n_samples", "max_val_batches",
                     "precise_bn_batches", "log_every", "max_minutes")


# ----------------------------------------------------------------------------- writing
def training_state_dict(model: TrainingState) -> dict:
    """A TrainingState as a checkpoint: everything needed to resume it exactly."""
    generator = getattr(model.generator, "module", model.generator)  # unwrap a DDP or compiled wrapper
    discriminator = getattr(model.discriminator, "module", model.discriminator)
    return {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "opt_g": model.opt_g.state_dict(), "opt_d": model.opt_d.state_dict(),
        "sched_g": model.sched_g.state_dict(), "sched_d": model.sched_d.state_dict(),
        "scaler": model.scaler.state_dict() if model.scaler is not None else None,
        "epoch": model.epoch, "step": model.step, "best_val_l1": model.best_val_l1, "history": model.history,
        "data": model.data,
        "rng": rng_states(),
    }


def save_checkpoint(model: TrainingState, path: str | Path) -> Path:
    """Write `training_state_dict(model)` atomically: a unique temporary file, then a rename."""
    path = Path(path)
    with atomic_path(path, what="checkpoint") as tmp:
        torch.save(training_state_dict(model), tmp)
    return path


def rng_states() -> dict:
    """Every random number generator's state (Python, NumPy, torch, CUDA), for a checkpoint.

    In a form `torch.load(weights_only=True)` accepts: tensors, lists, ints, strings.
    """
    numpy_state, python_state = np.random.get_state(), random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
            "python": [python_state[0], list(python_state[1]), python_state[2]],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(rng: dict) -> None:
    """Restore what `rng_states` saved: a resumed run draws the same dropout and jitter."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state((rng["numpy"][0], rng["numpy"][1].numpy().astype(np.uint32), *rng["numpy"][2:]))
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


# ----------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, checked: every field (`check_record`), the config, and the generator's weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{shown(path)}: no checkpoint there")
    state = load_plain(path, "pix2pix checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{shown(path)}: not a pix2pix training checkpoint (no {CHECKPOINT_FORMAT!r} format tag)")
    check_record(state, CHECKPOINT, path, "pix2pix checkpoint")
    try:
        config = TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{shown(path)}: the checkpoint's config is not valid ({err})") from None
    with torch.device("meta"):  # before train builds the networks it describes: they must fit the file
        generator = build_generator(**{k: getattr(config, k) for k in GENERATOR_KEYS[:5]})
    check_state_fits(generator, state["generator"], path, "generator")
    return state


def load_training_state(model: TrainingState, state: dict, path: str | Path = "the checkpoint") -> None:
    """Put a checkpoint (`read_checkpoint`) back into a TrainingState built from its config.

    Every field is checked first (`check_record`), and the optimisers' moments against the
    networks' parameters: a damaged file is refused in one line, not after two epochs of training.
    """
    check_record(state, CHECKPOINT, path, "pix2pix checkpoint")
    generator = getattr(model.generator, "module", model.generator)
    discriminator = getattr(model.discriminator, "module", model.discriminator)
    for name, network in (("opt_g", generator), ("opt_d", discriminator)):
        _check_moments(state[name]["state"], list(network.parameters()), path, name)
    generator.load_state_dict(state["generator"])
    discriminator.load_state_dict(state["discriminator"])
    model.opt_g.load_state_dict(state["opt_g"])
    model.opt_d.load_state_dict(state["opt_d"])
    model.sched_g.load_state_dict(state["sched_g"])
    model.sched_d.load_state_dict(state["sched_d"])
    # The optimisers' saved lr came from the stored schedule; recompute it from this config's, so a
    # finished run extended with more epochs does not go on at the lr its old schedule decayed to 0.
    for scheduler in (model.sched_g, model.sched_d):
        for group, base_lr, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                                          scheduler.lr_lambdas):
            group["lr"] = base_lr * factor(scheduler.last_epoch)
    if model.scaler is not None and state.get("scaler"):
        model.scaler.load_state_dict(state["scaler"])
    model.epoch, model.step, model.best_val_l1 = state["epoch"], state["step"], state["best_val_l1"]
    model.history = list(state["history"])
    model.data = dict(state.get("data") or {})
    if "data_licence" in state and "licence" not in model.data:  # an older checkpoint's one place for it
        model.data["licence"] = state["data_licence"]
    set_rng_states(state["rng"])


def _check_moments(moments: dict, params: list, path, name: str) -> None:
    """Adam's per-parameter state: one entry per parameter, of its shape, finite, squares >= 0."""
    for index, entry in moments.items():
        param = params[index] if isinstance(index, int) and 0 <= index < len(params) else None
        tensors = entry.items() if isinstance(entry, dict) and param is not None else [("entry", None)]
        for key, value in tensors:
            ok = isinstance(value, torch.Tensor) and (key == "step" or (
                value.shape == param.shape and bool(torch.isfinite(value).all())
                and not (key == "exp_avg_sq" and bool((value < 0).any()))))
            if not ok:
                field = f"{name}.state[{shown(repr(index))[:20]}].{key}"
                raise ValueError(f"{shown(path)}: not a usable pix2pix checkpoint: '{field}' does not fit its parameter "
                                 "(another network, or damaged)")


def restore_checkpoint(state: dict, path: str | Path, device=None, **config_overrides) -> TrainingState:
    """A TrainingState from checkpoint contents already read (and checked) by `read_checkpoint` from `path`."""
    model = TrainingState.from_config(TrainConfig.from_dict(state["config"]).replace(**config_overrides), device)
    # read_checkpoint checked every field and the generator; the discriminator is checked here.
    check_state_fits(model.discriminator, state["discriminator"], path, "discriminator")
    try:
        load_training_state(model, state, path)  # its own errors name the file and the field
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{shown(path)}: the checkpoint's optimiser, schedule or random state does not fit "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    return model


def load_checkpoint(path: str | Path, device: torch.device | str | None = None, **config_overrides) -> TrainingState:
    """Rebuild a TrainingState from a checkpoint (config included) to continue training.

    `config_overrides` change stored settings that may change between sessions (e.g. `epochs`
    to train longer); the schedules are rebuilt from the updated config.
    """
    return restore_checkpoint(read_checkpoint(path), path, device, **config_overrides)


# ----------------------------------------------------------------------------- the resume rule
def resume(path: Path, config: TrainConfig | dict | None) -> TrainingState:
    """The run saved at `path`, read once and checked before any step, with the changes `config` asks for.

    A dict (or None) changes the run's own settings; a whole TrainConfig must match them in all
    that decides what is learned (`resume_changes`).
    """
    state = read_checkpoint(path)
    stored = TrainConfig.from_dict(state["config"])
    requested = config if isinstance(config, TrainConfig) else stored.replace(**(config or {}))
    changes = resume_changes(stored, requested, shown(path))
    return restore_checkpoint(state, path, select_device(requested.device), **changes)


def resume_changes(stored: TrainConfig, requested: TrainConfig, path: str | Path) -> dict:
    """The fields of `requested` to apply when resuming the run stored with `stored`.

    Anything that changes what is learned (networks, data, objective, optimiser, seed) must match:
    a mismatch raises instead of silently training with the stored settings.
    """
    differ = [f.name for f in dataclasses.fields(TrainConfig)
              if f.name not in RESUME_MAY_CHANGE
              and getattr(stored, f.name) != getattr(requested, f.name)]
    if differ:
        listed = ", ".join(f"{k}={getattr(stored, k)!r} (asked: {getattr(requested, k)!r})" for k in differ)
        raise ValueError(f"{path}: cannot resume with different settings: the run was trained with {listed}. "
                         f"Resume with the run's own settings (only {', '.join(RESUME_MAY_CHANGE)} may "
                         f"change), or train into another output folder.")
    return {k: getattr(requested, k) for k in RESUME_MAY_CHANGE if k != "device"}  # device: load_checkpoint's
