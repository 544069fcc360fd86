"""The two file formats: generator weights ("pix2pix-generator/1") and training checkpoints.

    generator file   {"format", "config": the generator's settings, "state_dict", "extra": metrics, licence}
    checkpoint       {"format", "config": the whole TrainConfig, both networks, optimisers, schedules,
                      scaler, epoch, step, best_val_l1, history, rng, data (path, fingerprint, licence)}

Every `.pt` the library opens (these two, FID/LPIPS backbones) goes through `load_plain`:
`torch.load(..., weights_only=True)`, with errors that say what is wrong in one line. A file that
holds pickled Python objects is refused, never unpickled: loading it could run code (PyTorch's own
message suggests retrying with weights_only=False - we never do). Weights must be finite and fit
the network their settings describe, or the missing, unexpected and mis-shaped keys are listed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig
from .course import course_files
from .files import RefusedError, atomic_path
from .models import build_generator
from .runtime import rng_states, select_device, set_rng_states


def load_plain(path: str | Path, what: str = "weights file", *, mmap: bool = False):
    """`torch.load` of plain tensors, lists, dicts and numbers; errors are one line naming `path`.

    FileNotFoundError: no file. ValueError: not a torch file (truncated, corrupt, another format),
    or a file that holds Python objects (refused because unpickling them could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        text = str(err)
        if "GLOBAL" in text:  # "Trying to load unsupported GLOBAL posix.system": a pickled object
            raise ValueError(f"{path}: not a plain-tensor {what}: it holds Python objects, and loading those "
                             "could run code, so it is refused (only tensors, numbers and strings are read)") from None
        first = next((line for line in text.splitlines() if line.strip()), type(err).__name__)
        if first.startswith("Weights only load failed"):
            first = "not a PyTorch file"
        raise ValueError(f"{path}: not a readable {what} (corrupt, truncated or another format: "
                         f"{first[:120]})") from None


def check_finite(state: dict, path: str | Path) -> None:
    """Raise ValueError when any floating tensor of a state dict holds NaN or infinity."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: {len(bad)} of {len(state)} tensors hold NaN or infinite values "
                         f"(first: {bad[0]}); the weights are broken (a diverged run?) and would give "
                         "blank images")


def _listed(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_state_exactly(module: nn.Module, state: dict, path: str | Path, what: str = "network") -> None:
    """`module.load_state_dict(state)`, or ValueError listing missing and unexpected keys and shape mismatches."""
    check_state_fits(module, state, path, what)
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def check_state_fits(module: nn.Module, state: dict, path: str | Path, what: str = "network") -> None:
    """Raise ValueError unless `state` has exactly `module`'s keys and shapes (a few of each problem listed)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: the {what}'s weights are not a dict of tensors")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_listed(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_listed(unexpected)})")
    if shapes:
        problems.append(f"{len(shapes)} of another shape (file vs network: {_listed(shapes)})")
    if problems:
        raise ValueError(f"{path}: the weights do not fit the {what} its settings describe: "
                         + "; ".join(problems))


# The shipped generators and their model cards (weights/README.md).
SHIPPED_DIR = course_files("weights")  # the clone's weights/, or the wheel's copy
SHIPPED_WEIGHTS = SHIPPED_DIR / "openmoji_doodle_256.pt"  # augmented OpenMoji line art, 256 px
SHIPPED_SHOES = SHIPPED_DIR / "shoes_doodle_128.pt"       # doodle-robust edges2shoes, 128 px


WEIGHTS_FORMAT = "pix2pix-generator/1"


GENERATOR_KEYS = ("image_size", "ngf", "norm", "skips", "dropout", "in_channels", "out_channels")
# Written only when it is not the course's own ("reference": converted pretrained weights, pretrained.py).
OPTIONAL_GENERATOR_KEYS = ("layout",)


# ----------------------------------------------------------------------------- weights files
def save_generator(path, generator: nn.Module, config_dict: dict, *, half: bool = False,
                   extra: dict | None = None) -> Path:
    """Write a generator weights file ("pix2pix-generator/1"), atomically.

    Parameters:
        path:        where to write (a temporary file beside it is renamed into place)
        generator:   the network (a `build_generator` U-Net)
        config_dict: its settings; a `TrainConfig.to_dict()` is fine (only GENERATOR_KEYS are kept)
        half:        store float tensors as fp16 (half the file; loaded back as fp32)
        extra:       anything else worth keeping (metrics, epochs, the command); plain types only
    """
    config = {k: config_dict[k] for k in GENERATOR_KEYS if k in config_dict}
    config.setdefault("in_channels", getattr(generator, "in_channels", 3))
    config.setdefault("out_channels", getattr(generator, "out_channels", 3))
    if getattr(generator, "layout", "course") != "course":
        config["layout"] = generator.layout
    missing = [k for k in GENERATOR_KEYS if k not in config]
    if missing:
        raise ValueError(f"config_dict lacks the generator settings {missing}")
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in generator.state_dict().items()}
    payload = {"format": WEIGHTS_FORMAT, "config": config, "state_dict": state, "extra": dict(extra or {})}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_generator(path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Read a generator weights file (or a full training checkpoint) -> (generator in eval mode, meta).

    meta holds "config" (the generator settings), "extra" and "path". Refused with one line naming
    the file: pickled objects (never unpickled), NaN or infinite weights, weights that do not fit
    the network their settings describe (the missing, unexpected and mis-shaped keys are listed).
    """
    path = Path(path)
    data = load_plain(path, "generator weights file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict with 'state_dict' and 'config', got {type(data).__name__}")
    if data.get("format") == WEIGHTS_FORMAT:
        state, config, extra = data.get("state_dict"), data.get("config", {}), data.get("extra", {})
    elif "generator" in data and "config" in data:  # a full training checkpoint from train.py
        state, config = data["generator"], data["config"]
        extra = {k: data[k] for k in ("epoch", "step", "best_val_l1", "data_licence") if k in data}
        if isinstance(data.get("data"), dict) and data["data"].get("sketch_style"):
            extra["sketch"] = data["data"]["sketch_style"]  # as the run's generator files carry it
        if isinstance(data.get("history"), list) and data["history"]:  # last epoch's metrics, as "val"
            extra["val"] = {k[4:]: v for k, v in data["history"][-1].items() if k.startswith("val_")}
    else:
        raise ValueError(f"{path}: not a generator weights file (format {data.get('format')!r}, "
                         f"keys {sorted(map(str, data))[:8]})")
    if not isinstance(state, dict) or not isinstance(config, dict) or not isinstance(extra, dict):
        raise ValueError(f"{path}: the file has no generator state dict and config")
    check_finite(state, path)
    settings = {k: config[k] for k in GENERATOR_KEYS + OPTIONAL_GENERATOR_KEYS if k in config}
    try:
        generator = build_generator(**settings)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its generator settings {settings} do not describe a network ({err})") from None
    load_state_exactly(generator, state, path, "generator")
    if str(device) == "auto":
        device = select_device("auto")
    generator.to(device).eval()
    generator.sketch_style = extra.get("sketch")  # what preprocessing brings a doodle to (preprocess.py)
    full = {k: config[k] for k in GENERATOR_KEYS + OPTIONAL_GENERATOR_KEYS if k in config}
    full.setdefault("image_size", 2 ** generator.depth)
    return generator, {"config": full, "extra": extra, "path": str(path)}


def or_shipped(path: str | Path | None) -> Path:
    """`path`, or the shipped generator when None (with a clear error if a wheel or checkout lacks it)."""
    if path:
        return Path(path)
    if not SHIPPED_WEIGHTS.is_file():
        raise FileNotFoundError(f"{SHIPPED_WEIGHTS}: the shipped generator is not there; "
                                "pass --weights (e.g. runs/quick/best_generator.pt)")
    return SHIPPED_WEIGHTS


def export_generator(src: str | Path, dst: str | Path, *, half: bool = False, note: str | None = None) -> Path:
    """Copy a generator (a weights file or a full checkpoint) into a standalone weights file.

    Its metrics and data licence come along. `dst` may replace an earlier weights file, never the
    input or any other file.
    """
    dst = Path(dst)
    if dst.exists() and dst.resolve() == Path(src).resolve():
        raise RefusedError(f"{dst}: -o is the input itself; choose another file name")
    if dst.is_dir() or (dst.exists() and not is_weights_file(dst)):
        raise RefusedError(f"{dst}: exists and is not a pix2pix weights file; it is left as it is (choose another -o)")
    generator, meta = load_generator(src)
    extra = {**meta["extra"], "exported_from": str(src), **({"note": note} if note else {})}
    return save_generator(dst, generator, meta["config"], half=half, extra=extra)


def is_weights_file(path: Path) -> bool:
    """True when `path` is a generator weights file this library wrote (so export may replace it)."""
    try:
        data = load_plain(path, mmap=True)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == WEIGHTS_FORMAT  # never a checkpoint: a run's resume state


def save_checkpoint(model, path: str | Path) -> Path:
    """Write a training state's `state_dict()` atomically: a unique temporary file, then a rename."""
    path = Path(path)
    with atomic_path(path, what="checkpoint") as tmp:
        torch.save(model.state_dict(), tmp)
    return path


CHECKPOINT_FORMAT = "pix2pix-checkpoint/1"


# Every field a checkpoint must have, and its type: a file that lacks one is refused by name.
CHECKPOINT_FIELDS = {"config": dict, "generator": dict, "discriminator": dict, "opt_g": dict, "opt_d": dict,
                     "sched_g": dict, "sched_d": dict, "epoch": int, "step": int, "best_val_l1": (int, float),
                     "history": list, "rng": dict}


RNG_FIELDS = {"torch": torch.Tensor, "numpy": list, "python": list, "cuda": list}


def training_state_dict(model) -> dict:
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
        "data": model.data, "data_licence": model.data.get("licence", {}),
        "rng": rng_states(),
    }


def load_training_state(model, state: dict) -> None:
    """Put a checkpoint (`read_checkpoint`) back into a TrainingState built from its config."""
    getattr(model.generator, "module", model.generator).load_state_dict(state["generator"])
    getattr(model.discriminator, "module", model.discriminator).load_state_dict(state["discriminator"])
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
    set_rng_states(state["rng"])


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict:
    """A checkpoint's contents, checked: ValueError names a missing or mistyped field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there")
    state = load_plain(path, "pix2pix checkpoint", mmap=mmap)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a pix2pix training checkpoint (no {CHECKPOINT_FORMAT!r} format tag)")
    for fields, where in ((CHECKPOINT_FIELDS, state), (RNG_FIELDS, state.get("rng") or {})):
        prefix = "rng." if fields is RNG_FIELDS else ""
        for name, kind in fields.items():
            if name not in where:
                raise ValueError(f"{path}: the checkpoint has no field '{prefix}{name}'; it is damaged or "
                                 "from another program, and cannot be resumed")
            if not isinstance(where[name], kind) or isinstance(where[name], bool):
                raise ValueError(f"{path}: the checkpoint's field '{prefix}{name}' is a "
                                 f"{type(where[name]).__name__}, expected {getattr(kind, '__name__', 'a number')}")
    try:
        TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: the checkpoint's config is not valid ({err})") from None
    return state


def checkpoint_config(path: str | Path) -> TrainConfig:
    """The TrainConfig stored in a checkpoint, without building its networks."""
    return TrainConfig.from_dict(read_checkpoint(path, mmap=True)["config"])
