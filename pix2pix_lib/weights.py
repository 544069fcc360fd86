"""The two file formats: generator weights ("pix2pix-generator/1") and training checkpoints.

    generator file   {"format", "config": the generator's settings, "state_dict", "extra": metrics, licence}
    checkpoint       {"format", "config": the whole TrainConfig, both networks, optimisers, schedules,
                      scaler, epoch, step, best_val_l1, history, rng, data (path, fingerprint, licence)}

Every `.pt` the library opens goes through `torchfile.load_plain` (the archive inspected, then
plain tensors only). Then every field is checked against the format's spec below (`check_record`),
and the weights must fit the network their settings describe and make it work (`check_state_fits`).
Every error is one line naming the file (files.shown) and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig
from .course import course_files
from .files import RefusedError, atomic_path, names, shown
from .models import build_generator
from .models.generator import UNetGenerator
from .models.sanity import claimed_bytes_problem, output_problem, value_problems
from .runtime import rng_states, select_device, set_rng_states
from .torchfile import Within, check_record, load_plain


# ----------------------------------------------------------------------------- what a record holds
# Every field of the two formats and what it must hold (torchfile.record_problems reads these specs),
# checked when a file is read: a string where a dict belongs is refused in one line naming the
# field, not a traceback three calls later.
NUMBER = (int, float)
TENSORS = {"*": torch.Tensor}
NUMBERS = {"*": NUMBER}
EPOCH, STEP = Within((int,), 0, 10**6), Within((int,), 0, 10**12)
BEST = Within(NUMBER, 0, float("inf"))  # inf: no validation yet
GENERATOR_CONFIG = {"image_size": int, "ngf": Within((int,), 1, 1024), "norm": str,
                    "skips": bool, "dropout": bool, "in_channels?": Within((int,), 1, 4),
                    "out_channels?": Within((int,), 1, 4), "layout?": str}
EXTRA = {"sketch?": NUMBERS, "val?": NUMBERS, "epoch?": EPOCH, "step?": STEP, "best_val_l1?": BEST,
         "data_licence?": dict}
GENERATOR_FILE = {"format": str, "config": GENERATOR_CONFIG, "state_dict": TENSORS, "extra?": EXTRA}
HISTORY = [{"epoch": Within((int,), 1, 10**6), "val_l1": NUMBER, "*": NUMBER}]  # log.csv's rows: numbers only
DATA = {"path?": str, "licence?": dict, "fingerprint?": str, "files?": int, "sketch_style?": NUMBERS}
OPTIMISER = {"state": dict, "param_groups": [{"params": [int], "lr": NUMBER}]}
SCHEDULE = {"last_epoch": int, "base_lrs": [NUMBER]}
CHECKPOINT = {"format": str, "config": dict, "generator": TENSORS, "discriminator": TENSORS, "opt_g": OPTIMISER,
              "opt_d": OPTIMISER, "sched_g": SCHEDULE, "sched_d": SCHEDULE, "scaler?": (dict, type(None)),
              "epoch": EPOCH, "step": STEP, "best_val_l1": BEST, "history": HISTORY, "data?": DATA,
              "data_licence?": dict, "rng": {"torch": torch.Tensor, "numpy": list, "python": list, "cuda": list}}
# A full checkpoint read for its generator (generate, export): the fields that are used.
CHECKPOINT_GENERATOR = {"config": dict, "generator": TENSORS, "epoch?": EPOCH, "step?": STEP, "best_val_l1?": BEST,
                        "data_licence?": dict, "history?": HISTORY, "data?": DATA}
MAX_IMAGE_SIZE = 2048  # a generator file's size; larger U-Nets are no course model (and slow to check)


def check_state_fits(module: nn.Module, state: dict, path: str | Path, what: str = "network") -> None:
    """Raise ValueError unless `state` fits `module` and makes it work: the one check before weights are used.

    Exactly `module`'s keys and shapes (a few of each problem listed); tensors that do not overlap
    (no more memory than the file holds); floating-point where the module's are, finite, below
    sanity.MAX_MAGNITUDE, batch-norm variances >= 0; and for a U-Net, one forward pass on a small
    drawing giving a finite picture that is not one flat colour (models/sanity.py). `module` may
    live on the "meta" device (nothing allocated until the state is known to fit).
    """
    check_record(state, TENSORS, path, f"{what}'s weights")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({names(missing, 3)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({names(unexpected, 3)})")
    if shapes:
        problems.append(f"{len(shapes)} of another shape (file vs network: {names(shapes, 3)})")
    if problems:
        raise ValueError(f"{shown(path)}: the weights do not fit the {what} its settings describe: "
                         + "; ".join(problems))
    problem = claimed_bytes_problem(state)
    problems = [problem] if problem else value_problems(module, state)
    if not problems and isinstance(module, UNetGenerator):
        problems = [p for p in [output_problem(module, state)] if p]
    if problems:
        raise ValueError(f"{shown(path)}: the {what}'s weights are no working network: {names(problems, 3)} "
                         "(a damaged, diverged or hand-made file)")


def load_state_exactly(module: nn.Module, state: dict, path: str | Path, what: str = "network") -> nn.Module:
    """`check_state_fits`, then the state put into `module` (fp16 -> fp32; a "meta" module gets the tensors)."""
    check_state_fits(module, state, path, what)
    module.load_state_dict({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                           assign=any(t.is_meta for t in module.state_dict().values()))
    return module


def check_finite(state: dict, path: str | Path) -> None:
    """Raise ValueError when any floating tensor of a state dict holds NaN or infinity."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{shown(path)}: {len(bad)} of {len(state)} tensors hold NaN or infinite values "
                         f"(first: {shown(bad[0])}); the weights are broken (a diverged run?) and would give "
                         "blank images")


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
    the file: an archive that is not plain (`load_plain`), pickled objects (never unpickled), a field
    of the wrong type (`check_record`), settings that describe no network, weights that do not fit
    or do not work (`check_state_fits`: NaN, 1e38, negative variances, int8, a flat picture).
    """
    path = Path(path)
    data = load_plain(path, "generator weights file")
    if isinstance(data, dict) and data.get("format") == WEIGHTS_FORMAT:
        check_record(data, GENERATOR_FILE, path, "generator weights file")
        state, config, extra = data["state_dict"], data["config"], data.get("extra", {})
    elif isinstance(data, dict) and "generator" in data and "config" in data:  # a full training checkpoint
        check_record(data, CHECKPOINT_GENERATOR, path, "training checkpoint")
        state, config = data["generator"], data["config"]
        extra = {k: data[k] for k in ("epoch", "step", "best_val_l1", "data_licence") if k in data}
        if data.get("data", {}).get("sketch_style"):
            extra["sketch"] = data["data"]["sketch_style"]  # as the run's generator files carry it
        if data.get("history"):  # the last epoch's metrics, as "val"
            extra["val"] = {k[4:]: v for k, v in data["history"][-1].items() if k.startswith("val_")}
    else:
        found = f"format {data.get('format')!r}, keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) \
            else f"a {type(data).__name__}"
        raise ValueError(f"{shown(path)}: not a generator weights file ({shown(found)[:160]})")
    settings = {k: config[k] for k in GENERATOR_KEYS + OPTIONAL_GENERATOR_KEYS if k in config}
    check_record(settings, {f"{k}?": v for k, v in GENERATOR_CONFIG.items()}, path, "generator weights file")
    try:
        if settings.get("image_size", 256) > MAX_IMAGE_SIZE:
            raise ValueError(f"image_size is over {MAX_IMAGE_SIZE}")
        with torch.device("meta"):  # its shapes only: memory comes with weights that fit
            generator = build_generator(**settings)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{shown(path)}: its generator settings {shown(str(settings))} do not describe a network "
                         f"({err})") from None
    load_state_exactly(generator, state, path, "generator")
    if str(device) == "auto":
        device = select_device("auto")
    generator.to(device).eval()
    generator.sketch_style = extra.get("sketch")  # what preprocessing brings a doodle to (preprocess.py)
    settings.setdefault("image_size", 2 ** generator.depth)
    return generator, {"config": settings, "extra": extra, "path": str(path)}


def or_shipped(path: str | Path | None) -> Path:
    """`path`, or the shipped generator when None (with a clear error if a wheel or checkout lacks it)."""
    if path:
        return Path(path)
    if not SHIPPED_WEIGHTS.is_file():
        raise FileNotFoundError(f"{shown(SHIPPED_WEIGHTS)}: the shipped generator is not there; "
                                "pass --weights (e.g. runs/quick/best_generator.pt)")
    return SHIPPED_WEIGHTS


def export_generator(src: str | Path, dst: str | Path, *, half: bool = False, note: str | None = None) -> Path:
    """Copy a generator (a weights file or a full checkpoint) into a standalone weights file.

    Its metrics and data licence come along. `dst` may replace an earlier weights file, never the
    input or any other file.
    """
    dst = Path(dst)
    if dst.exists() and dst.resolve() == Path(src).resolve():
        raise RefusedError(f"{shown(dst)}: -o is the input itself; choose another file name")
    if dst.is_dir() or (dst.exists() and not is_weights_file(dst)):
        raise RefusedError(f"{shown(dst)}: exists and is not a pix2pix weights file; it is left as it is "
                           "(choose another -o)")
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


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(model, path: str | Path) -> Path:
    """Write a training state's `state_dict()` atomically: a unique temporary file, then a rename."""
    path = Path(path)
    with atomic_path(path, what="checkpoint") as tmp:
        torch.save(model.state_dict(), tmp)
    return path


CHECKPOINT_FORMAT = "pix2pix-checkpoint/1"


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


def load_training_state(model, state: dict, path: str | Path = "the checkpoint") -> None:
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
