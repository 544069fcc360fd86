"""The reference implementation's pretrained pix2pix generators, converted to our weights file.

    python -m pix2pix_lib download-model edges2shoes --out weights/pretrained

fetches `<name>.pth` from the address the reference's `scripts/download_pix2pix_model.sh` uses
(with the datasets' download machinery: progress, resume, size limit) and writes `<out>/<name>.pt`,
a "pix2pix-generator/1" file that `load_generator`, `generate`, `evaluate`, `colorize` and the
canvas read. Nothing of the reference's code runs: its file is read as plain tensors.

The mapping. The reference builds its U-Net recursively (`UnetSkipConnectionBlock`), ours as two
lists; the parameters are the same (54,413,955 at 256 px), under other names:

    reference level 0 (outermost)   model.model.0 (down conv)           model.model.3 (up conv)
    level 1                         model.model.1.model.{1,2}           ...model.{5,6}
    level k >= 2                    <level k-1>.3.model.{1,2}           ...{5,6}
    innermost                       <...>.model.1 (down conv, no norm)  ...model.{3,4}

and its up convolutions read the concatenation [skip, up] where ours read [up, skip] (their input
channels are swapped halves). Its activations differ from the paper's text (a ReLU after each
concatenation, one at the bottleneck, dropout one block further out), so converted weights run in
our generator's `layout="reference"`, which computes exactly what the reference computes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data.download import _download
from .models import build_generator
from .files import RefusedError
from .weights import load_plain, save_generator

DEFAULT_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
_TERMS = ("pretrained by the pix2pix authors (junyanz/pytorch-CycleGAN-and-pix2pix, BSD licence) on {data}; "
          "cite Isola et al., CVPR 2017")
# name: (direction of the pairs it was trained on, what it translates, its training data and terms)
REFERENCE_MODELS = {
    "edges2shoes": ("AtoB", "shoe edges -> shoe photo", "edges2shoes (UT Zappos50K: academic, non-commercial use; "
                                                         "cite Yu & Grauman, CVPR 2014)"),
    "sat2map": ("AtoB", "satellite photo -> map", "maps (Google Maps imagery: research use)"),
    "map2sat": ("BtoA", "map -> satellite photo", "maps (Google Maps imagery: research use)"),
    "facades_label2photo": ("BtoA", "facade labels -> facade photo", "CMP Facades (research use)"),
    "day2night": ("BtoA", "day photo -> night photo", "night2day (Transient Attributes: research use)"),
}
MAX_BYTES = 300 * 2**20  # the files are ~218 MB (54M float32 parameters)
# The sketch style of the edge models' training inputs (preprocess.measure_sketch_style on 64 of the
# official edges2shoes training pairs' HED edges): a doodle is thinned and framed to this.
SKETCH_STYLES = {"edges2shoes": {"stroke_width_at_256": 0.75, "fill": 0.965, "measured_on": 64}}


def _level_prefixes(depth: int) -> list[str]:
    """The key prefix of each level of the reference's recursive U-Net, outermost first."""
    prefixes = ["model.model."]
    for level in range(1, depth):
        prefixes.append(prefixes[-1] + ("1." if level == 1 else "3.") + "model.")
    return prefixes


def reference_to_ours(state: dict, depth: int) -> dict:
    """A reference `UnetGenerator` state dict (batch norm, depth = num_downs) -> our UNetGenerator's."""
    p = _level_prefixes(depth)
    names: dict[str, str] = {"encoder.0.0": p[0] + "0", "to_image.0": p[0] + "3"}
    for i in range(1, depth - 1):  # encoder blocks with a norm: level i's down conv and down norm
        names[f"encoder.{i}.0"], names[f"encoder.{i}.1"] = p[i] + "1", p[i] + "2"
    names[f"encoder.{depth - 1}.0"] = p[depth - 1] + "1"  # the bottleneck: no norm
    names["decoder.0.0"], names["decoder.0.1"] = p[depth - 1] + "3", p[depth - 1] + "4"  # innermost up
    for j in range(1, depth - 1):  # decoder j is level depth-1-j's up conv and up norm
        level = depth - 1 - j
        names[f"decoder.{j}.0"], names[f"decoder.{j}.1"] = p[level] + "5", p[level] + "6"
    ours = {}
    for our_name, ref_name in names.items():
        for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            key = f"{ref_name}.{suffix}"
            if key in state:
                ours[f"{our_name}.{suffix}"] = state[key]
            elif suffix == "num_batches_tracked" and f"{ref_name}.running_mean" in state:
                ours[f"{our_name}.{suffix}"] = torch.tensor(0)  # files from before PyTorch 0.4 lack it
    for our_name in [f"decoder.{j}.0" for j in range(1, depth - 1)] + ["to_image.0"]:
        w = ours[f"{our_name}.weight"]  # (in, out, 4, 4): in = [skip, up] there, [up, skip] here
        half = w.shape[0] // 2
        ours[f"{our_name}.weight"] = torch.cat([w[half:], w[:half]])
    unused = sorted(set(state) - {f"{r}.{s}" for r in names.values()
                                  for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")})
    if unused:
        raise ValueError(f"not a reference U-Net of depth {depth}: {len(unused)} keys left over ({unused[:3]})")
    return ours


def depth_of(state: dict) -> int:
    """num_downs of a reference U-Net state dict: one more than its nesting of '.model.' levels."""
    return max(key.count("model.") for key in state) - 1  # "model.model." is level 0


def convert_reference_generator(path: str | Path, out: str | Path, *, name: str = "", source: str = "") -> Path:
    """A reference generator file (`latest_net_G.pth`) -> our weights file at `out`."""
    path = Path(path)
    state = load_plain(path, "reference generator file")
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: not a generator state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    depth = depth_of(state)
    ngf = int(state["model.model.0.weight"].shape[0])
    config = {"image_size": 2**depth, "ngf": ngf, "norm": "batch", "skips": True, "dropout": True,
              "in_channels": int(state["model.model.0.weight"].shape[1]),
              "out_channels": int(state["model.model.3.weight"].shape[1]), "layout": "reference"}
    generator = build_generator(**config)
    generator.load_state_dict(reference_to_ours(state, depth))
    direction, task, data = REFERENCE_MODELS.get(name, ("AtoB", "", "its training data"))
    extra = {"source": source or str(path), "reference_model": name, "direction": direction, "task": task,
             "data_licence": {"license": _TERMS.format(data=data)},
             **({"sketch": SKETCH_STYLES[name]} if name in SKETCH_STYLES else {})}
    return save_generator(out, generator, config, extra=extra)


def _converted(path: Path, name: str) -> bool:
    """True when `path` is what an earlier download-model of `name` wrote."""
    try:
        data = load_plain(path, mmap=True)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("extra") or {}).get("reference_model") == name


def download_model(name: str, out_dir: str | Path, *, base_url: str = DEFAULT_URL, progress: bool = True) -> Path:
    """Download a reference pretrained generator by name and convert it: returns `<out_dir>/<name>.pt`."""
    if name not in REFERENCE_MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(REFERENCE_MODELS)}")
    out_dir = Path(out_dir)
    target = out_dir / f"{name}.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    if target.exists() and not _converted(target, name):
        raise RefusedError(f"{target}: exists and is not the converted {name} model; it is left as it is "
                           "(choose another --out)")
    raw = out_dir / f".{name}.reference.pth"
    url = f"{base_url.rstrip('/')}/{name}.pth"
    if not raw.exists():
        _download(url, raw, progress=progress, max_bytes=MAX_BYTES)
    try:
        convert_reference_generator(raw, target, name=name, source=url)
    finally:
        raw.unlink(missing_ok=True)  # converted, or not a model (an HTML error page...): never reused
    return target
