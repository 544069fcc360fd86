"""Generator weights files ("pix2pix-generator/2") and the card that travels with a generator.

    generator file   {"format", "card": a GeneratorCard (network settings, sketch style, licence, metrics,
                      source), "state_dict"}; "pix2pix-generator/1" files ({"config", "extra"}) still load,
                      and so does a training checkpoint's generator (train/checkpoint.py has that format)
    .safetensors     the same weights and card (as metadata), written and read by the safetensors package:
                      a JSON header, then raw tensors; nothing in it is code

Every `.pt` the library opens goes through `torchfile.load_plain` (the archive inspected, then
plain tensors only). Then every field is checked against the format's spec below (`check_record`),
and the weights must fit the network their settings describe and make it work (`check_state_fits`).
Every error is one line naming the file (files.shown) and what is wrong.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from torch import nn

from .course import course_files
from .files import RefusedError, atomic_path, names, shown
from .models import build_generator
from .models.generator import UNetGenerator
from .models.reference import build_reference_generator
from .models.sanity import claimed_bytes_problem, output_problem, value_problems
from .runtime import select_device
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
GENERATOR_FILE_V1 = {"format": str, "config": GENERATOR_CONFIG, "state_dict": TENSORS, "extra?": EXTRA}
CARD = {"network": GENERATOR_CONFIG, "sketch_style": (dict, type(None)), "licence": dict, "metrics": NUMBERS,
        "source": str, "epoch": (int, type(None)), "step": (int, type(None)), "note": str}
GENERATOR_FILE = {"format": str, "card": CARD, "state_dict": TENSORS}
HISTORY = [{"epoch": Within((int,), 1, 10**6), "val_l1": NUMBER, "*": NUMBER}]  # log.csv's rows: numbers only
DATA = {"path?": str, "licence?": dict, "fingerprint?": str, "files?": int, "sketch_style?": NUMBERS}
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
SHIPPED_CARS = SHIPPED_DIR / "cars_doodle_128.pt"         # doodle-robust Carvana cars, 128 px
SHIPPED_MODELS = {"emoji": SHIPPED_WEIGHTS, "shoes": SHIPPED_SHOES, "cars": SHIPPED_CARS}  # generate --model NAME
WEIGHTS_FORMAT, WEIGHTS_FORMAT_V1 = "pix2pix-generator/2", "pix2pix-generator/1"
GENERATOR_KEYS = ("image_size", "ngf", "norm", "skips", "dropout", "in_channels", "out_channels")
# "layout" is in a card's network only for the reference's converted weights (pretrained.py).
NETWORKS = {"course": build_generator, "reference": build_reference_generator}


@dataclass(frozen=True)
class GeneratorCard:
    """What travels with a generator: written by `save_generator`, returned by `load_generator`,
    handed to `generate.colorize` (and the canvas) explicitly. Plain types only.

    network:      `build_generator`'s settings (GENERATOR_KEYS; "layout": "reference" for converted weights)
    sketch_style: `preprocess.measure_sketch_style` of its training sketches, what a doodle is brought
                  to before it goes in (None: photos or no ink, or unknown)
    licence:      the terms of its training data (a dataset manifest's attribution, license, ...)
    metrics:      its validation numbers (l1, psnr, ssim, ...) at `epoch`
    source:       where it came from (a run's file, a checkpoint, a URL); note: anything else worth saying
    """

    network: dict
    sketch_style: dict | None = None
    licence: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    source: str = ""
    epoch: int | None = None
    step: int | None = None
    note: str = ""

    @classmethod
    def for_config(cls, config: dict, **fields) -> "GeneratorCard":
        """A card whose network is the generator settings of `config` (a `TrainConfig.to_dict()` will do)."""
        missing = [k for k in GENERATOR_KEYS[:5] if k not in config]
        if missing:
            raise ValueError(f"the settings lack the generator's {missing}")
        network = {"in_channels": 3, "out_channels": 3, **{k: config[k] for k in GENERATOR_KEYS if k in config}}
        return cls(network={**network, **({"layout": config["layout"]} if "layout" in config else {})}, **fields)

    @property
    def image_size(self) -> int:
        return int(self.network["image_size"])

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "GeneratorCard":
        return replace(self, **changes)

    def build(self) -> nn.Module:
        """The network the card describes, untrained (its layout's builder, NETWORKS)."""
        settings = {k: v for k, v in self.network.items() if k != "layout"}
        return NETWORKS[self.network.get("layout", "course")](**settings)


def card_from_v1(config: dict, extra: dict, source: str = "") -> GeneratorCard:
    """The card of a "pix2pix-generator/1" file: its "config" and "extra" under one spelling each."""
    note = extra.get("note") or ": ".join(str(extra[k]) for k in ("reference_model", "task") if extra.get(k))
    return GeneratorCard.for_config(
        config, sketch_style=extra.get("sketch"), licence=dict(extra.get("data_licence") or {}),
        metrics=dict(extra.get("val") or {}), source=str(extra.get("exported_from") or extra.get("source") or source),
        epoch=extra.get("epoch"), step=extra.get("step"), note=note)


# ----------------------------------------------------------------------------- weights files
def save_generator(path, generator: nn.Module, card: GeneratorCard | dict, *, half: bool = False) -> Path:
    """Write a generator weights file ("pix2pix-generator/2"): its weights and its `card`, atomically.

    card: a GeneratorCard, or settings (a `TrainConfig.to_dict()`) for a card of its network alone.
    half: store float tensors as fp16 (half the file; loaded back as fp32).
    """
    card = card if isinstance(card, GeneratorCard) else GeneratorCard.for_config(card)
    check_record(card.to_dict(), CARD, path, "generator card")
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous().clone()
             for k, v in generator.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == SAFETENSORS:
            Path(tmp).write_bytes(safetensors.torch.save(state, {"format": WEIGHTS_FORMAT,
                                                                 "card": json.dumps(card.to_dict())}))
        else:
            torch.save({"format": WEIGHTS_FORMAT, "card": card.to_dict(), "state_dict": state}, tmp)
    return path


def load_generator(path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, GeneratorCard]:
    """Read a generator weights file (or a full training checkpoint) -> (generator in eval mode, its card).

    Refused with one line naming the file: an archive that is not plain (`load_plain`), pickled
    objects (never unpickled), a field of the wrong type (`check_record`), settings that describe no
    network, weights that do not fit or do not work (`check_state_fits`: NaN, 1e38, negative
    variances, int8, a flat picture).
    """
    path = Path(path)
    state, card = read_generator(path)
    try:
        if card.network.get("image_size", 256) > MAX_IMAGE_SIZE:
            raise ValueError(f"image_size is over {MAX_IMAGE_SIZE}")
        with torch.device("meta"):  # its shapes only: memory comes with weights that fit
            generator = card.build()
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{shown(path)}: its generator settings {shown(str(card.network))} do not describe a "
                         f"network ({err})") from None
    load_state_exactly(generator, state, path, "generator")
    generator.to(select_device("auto") if str(device) == "auto" else device).eval()
    return generator, card


def read_generator(path: Path) -> tuple[dict, GeneratorCard]:
    """(state dict, card) of a weights file of either format or of a checkpoint, every field checked."""
    data = read_safetensors(path) if Path(path).suffix == SAFETENSORS else load_plain(path, "generator weights file")
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == WEIGHTS_FORMAT:
        check_record(data, GENERATOR_FILE, path, "generator weights file")
        card = data["card"]
        if card["sketch_style"] is not None:
            check_record(card["sketch_style"], NUMBERS, path, "generator card's sketch_style")
        return data["state_dict"], GeneratorCard(**{k: card[k] for k in GeneratorCard.__dataclass_fields__})
    if fmt == WEIGHTS_FORMAT_V1:
        check_record(data, GENERATOR_FILE_V1, path, "generator weights file")
        return data["state_dict"], card_from_v1(data["config"], data.get("extra", {}))
    if isinstance(data, dict) and "generator" in data and "config" in data:  # a full training checkpoint
        check_record(data, CHECKPOINT_GENERATOR, path, "training checkpoint")
        check_record({k: v for k, v in data["config"].items() if k in GENERATOR_CONFIG},
                     {f"{k}?": v for k, v in GENERATOR_CONFIG.items()}, path, "training checkpoint")
        return data["generator"], checkpoint_card(data, str(path))
    found = f"format {fmt!r}, keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) else f"a {type(data).__name__}"
    raise ValueError(f"{shown(path)}: not a generator weights file ({shown(found)[:160]})")


def checkpoint_card(state: dict, source: str = "") -> GeneratorCard:
    """The card of a checkpoint's generator: its settings, data (sketch style, licence) and last metrics."""
    data, history = state.get("data") or {}, state.get("history") or []
    metrics = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")} if history else {}
    try:
        return GeneratorCard.for_config(
            state["config"], sketch_style=data.get("sketch_style"),
            licence=dict(data.get("licence") or state.get("data_licence") or {}), metrics=metrics, source=source,
            epoch=state.get("epoch"), step=state.get("step"))
    except ValueError as err:
        raise ValueError(f"{shown(source)}: {err}") from None


def or_shipped(path: str | Path | None, model: str | None = None) -> Path:
    """`path`; else the shipped generator called `model` (SHIPPED_MODELS), by default the emoji one.

    A clear error when a wheel or checkout lacks the file, or the name is not a shipped model's.
    """
    if path and model:
        raise ValueError("give a weights file or a shipped model's name, not both")
    if path:
        return Path(path)
    if (model or "emoji") not in SHIPPED_MODELS:
        raise ValueError(f"no shipped model is called {model!r}; the shipped ones: {', '.join(SHIPPED_MODELS)}")
    shipped = SHIPPED_MODELS[model or "emoji"]
    if not shipped.is_file():
        raise FileNotFoundError(f"{shown(shipped)}: the shipped generator is not there; "
                                "pass --weights (e.g. runs/quick/best_generator.pt)")
    return shipped


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
    generator, card = load_generator(src)
    return save_generator(dst, generator, card.replace(source=card.source or str(src), note=note or card.note), half=half)


def is_weights_file(path: Path) -> bool:
    """True when `path` is a generator weights file this library wrote (so export may replace it)."""
    try:
        data = read_safetensors(path) if path.suffix == SAFETENSORS else load_plain(path, mmap=True)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") in (WEIGHTS_FORMAT, WEIGHTS_FORMAT_V1)  # never a checkpoint: a run's resume state


# ----------------------------------------------------------------------------- .safetensors
SAFETENSORS = ".safetensors"


def read_safetensors(path: Path) -> dict:
    """A .safetensors generator file as {"format", "card", "state_dict"}: the file read once, its layout
    checked by the safetensors package; a broken header or tensors, or no card, refused in one line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise OSError(f"{shown(path)}: cannot read this weights file ({err.strerror or err})") from None
    try:
        state = safetensors.torch.load(raw)  # copies the tensors out of `raw`
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])  # already checked by load
        metadata = header.get("__metadata__") or {}
        return {"format": metadata.get("format"), "card": json.loads(metadata["card"]), "state_dict": state}
    except (safetensors.SafetensorError, ValueError, KeyError, TypeError, RecursionError, struct.error) as err:
        raise ValueError(f"{shown(path)}: not a usable .safetensors generator file "
                         f"({type(err).__name__}: {str(err)[:120]})") from None
