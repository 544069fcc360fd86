"""The reference implementation's pretrained pix2pix generators, converted to our weights file.

    python -m pix2pix_lib download-model edges2shoes --out weights/pretrained

fetches `<name>.pth` from the address the reference's `scripts/download_pix2pix_model.sh` uses
(with the datasets' download machinery: progress, resume, size limit) and writes `<out>/<name>.pt`,
a generator weights file (with its card: licence, sketch style, source) that `load_generator`, `generate`, `evaluate`, `colorize` and the
canvas read. Nothing of the reference's code runs: its file is read as plain tensors. A file that
is no reference U-Net is refused in one line naming it: not a dict of named tensors, keys or shapes
of another network (or of one too large to build), integers where floats belong, NaN or infinite
values, and finite weights that paint NaN or one flat colour on a test input.

The mapping. The reference builds its U-Net recursively (`UnetSkipConnectionBlock`), ours as two
lists; the parameters are the same (54,413,955 at 256 px), under other names:

    reference level 0 (outermost)   model.model.0 (down conv)           model.model.3 (up conv)
    level 1                         model.model.1.model.{1,2}           ...model.{5,6}
    level k >= 2                    <level k-1>.3.model.{1,2}           ...{5,6}
    innermost                       <...>.model.1 (down conv, no norm)  ...model.{3,4}

and its up convolutions read the concatenation [skip, up] where ours read [up, skip] (their input
channels are swapped halves). Its activations differ from the paper's text (a ReLU after each
concatenation, one at the bottleneck, dropout one block further out), so converted weights run in
`models/reference.py`'s variant of the U-Net (their card's network says `layout="reference"`), which
computes exactly what the reference computes; the course's U-Net stays the paper's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data.fetch import discard_download, open_download
from .files import RefusedError, exclusive_lock, shown
from .models.reference import build_reference_generator
from .weights import GeneratorCard, load_plain, read_generator, save_generator

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
_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# What a reference U-Net file may describe (the reference's own are 256 px, ngf 64): nothing larger
# is built, so a small file claiming a huge network cannot exhaust the memory.
MIN_DEPTH, MAX_DEPTH, MAX_NGF = 3, 9, 128


def _level_prefixes(depth: int) -> list[str]:
    """The key prefix of each level of the reference's recursive U-Net, outermost first."""
    prefixes = ["model.model."]
    for level in range(1, depth):
        prefixes.append(prefixes[-1] + ("1." if level == 1 else "3.") + "model.")
    return prefixes


def reference_names(depth: int) -> dict[str, str]:
    """Our UNetGenerator's module names -> the reference `UnetGenerator`'s (batch norm, depth = num_downs)."""
    p = _level_prefixes(depth)
    names: dict[str, str] = {"encoder.0.0": p[0] + "0", "to_image.0": p[0] + "3"}
    for i in range(1, depth - 1):  # encoder blocks with a norm: level i's down conv and down norm
        names[f"encoder.{i}.0"], names[f"encoder.{i}.1"] = p[i] + "1", p[i] + "2"
    names[f"encoder.{depth - 1}.0"] = p[depth - 1] + "1"  # the bottleneck: no norm
    names["decoder.0.0"], names["decoder.0.1"] = p[depth - 1] + "3", p[depth - 1] + "4"  # innermost up
    for j in range(1, depth - 1):  # decoder j is level depth-1-j's up conv and up norm
        level = depth - 1 - j
        names[f"decoder.{j}.0"], names[f"decoder.{j}.1"] = p[level] + "5", p[level] + "6"
    return names


def reference_to_ours(state: dict, depth: int) -> dict:
    """A reference `UnetGenerator` state dict (batch norm, depth = num_downs) -> our UNetGenerator's."""
    names = reference_names(depth)
    ours = {}
    for our_name, ref_name in names.items():
        for suffix in _SUFFIXES:
            key = f"{ref_name}.{suffix}"
            if key in state:
                ours[f"{our_name}.{suffix}"] = state[key]
            elif suffix == "num_batches_tracked" and f"{ref_name}.running_mean" in state:
                ours[f"{our_name}.{suffix}"] = torch.tensor(0)  # files from before PyTorch 0.4 lack it
    for our_name in [f"decoder.{j}.0" for j in range(1, depth - 1)] + ["to_image.0"]:
        w = ours.get(f"{our_name}.weight")  # (in, out, 4, 4): in = [skip, up] there, [up, skip] here
        if w is not None and w.ndim == 4:
            ours[f"{our_name}.weight"] = torch.cat([w[w.shape[0] // 2:], w[:w.shape[0] // 2]])
    unused = sorted(set(state) - {f"{r}.{s}" for r in names.values() for s in _SUFFIXES})
    if unused:
        raise ValueError(f"not a reference U-Net of depth {depth}: {len(unused)} keys left over "
                         f"({', '.join(shown(k) for k in unused[:3])})")
    return ours


def depth_of(state: dict) -> int:
    """num_downs of a reference U-Net state dict: one more than its nesting of '.model.' levels."""
    return max(key.count("model.") for key in state) - 1  # "model.model." is level 0


def _plain_state(data, path: Path) -> dict:
    """The file's contents as {str: tensor} without DataParallel's "module." prefix, or one line why not."""
    where = f"{shown(path)}: not a reference generator (a state dict of a pix2pix UnetGenerator)"
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where}: it holds {'an empty dict' if isinstance(data, dict) else 'a ' + type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            raise ValueError(f"{where}: its key {shown(repr(key))[:60]} is of type {type(key).__name__}, not a name")
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: '{shown(key)[:60]}' holds a value of type {type(value).__name__}, not a tensor")
    return {k.removeprefix("module."): v for k, v in data.items()}  # saved from DataParallel


def _fits(state: dict, generator: torch.nn.Module, depth: int, path: Path) -> None:
    """One line when `state` lacks, adds or mis-shapes a key of the reference U-Net `generator` mirrors."""
    names = reference_names(depth)
    expected = {f"{names[k.rsplit('.', 1)[0]]}.{k.rsplit('.', 1)[1]}": v for k, v in generator.state_dict().items()}
    checks = (  # in this order: shapes are known good before any tensor's values are read
        ("missing", lambda: [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]),
        ("unexpected", lambda: [k for k in state if k not in expected]),
        ("of another shape", lambda: [f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}"
                                      for k, v in expected.items() if k in state and state[k].shape != v.shape]),
        ("not of plain float numbers", lambda: [f"{k} ({state[k].dtype})" for k, v in expected.items() if k in state and (
            state[k].layout != torch.strided or state[k].is_floating_point() != v.is_floating_point())]),
        ("holding NaN or infinity", lambda: [k for k, v in state.items()
                                             if v.is_floating_point() and not bool(torch.isfinite(v).all())]),
    )
    for what, find in checks:
        if keys := find():
            listed = ", ".join(shown(k) for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            raise ValueError(f"{shown(path)}: not the weights of a reference U-Net of depth {depth}: {len(keys)} "
                             f"key{'s' * (len(keys) > 1)} {what} ({listed}); it is refused")


def _check_output(generator: torch.nn.Module, path: Path) -> None:
    """Refuse weights that are finite yet paint NaN or one flat colour (1e38 weights, negative variances)."""
    size = 2**generator.depth
    x = torch.rand(1, generator.in_channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        y = generator.eval()(x)
    if not bool(torch.isfinite(y).all()) or float(y.max() - y.min()) < 1e-4:
        raise ValueError(f"{shown(path)}: the converted generator paints {'NaN' if y.isnan().any() else 'one flat colour'} "
                         "for a test input: the weights are broken (a diverged run, or not weights at all); refused")


def convert_reference_generator(path: str | Path, out: str | Path, *, name: str = "", source: str = "") -> Path:
    """A reference generator file (`latest_net_G.pth`) -> our weights file at `out`.

    Refused with one line naming the file: anything but a dict of tensors, keys or shapes of another
    network, integer tensors where floats belong, NaN or infinite weights, and weights that paint
    NaN or a flat picture.
    """
    path = Path(path)
    state = _plain_state(load_plain(path, "reference generator file"), path)
    depth, first, last = depth_of(state), state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if not (MIN_DEPTH <= depth <= MAX_DEPTH and first is not None and first.ndim == 4 and last is not None
            and last.ndim == 4 and 0 < first.shape[0] <= MAX_NGF and 0 < first.shape[1] <= 4 and 0 < last.shape[1] <= 4):
        raise ValueError(f"{shown(path)}: not the weights of a reference U-Net for {2**MIN_DEPTH} to {2**MAX_DEPTH} px "
                         f"(model.model.0.weight and model.model.3.weight, 1-{MAX_NGF} filters, 1-4 channels): "
                         "it is refused")
    network = {"image_size": 2**depth, "ngf": int(first.shape[0]), "norm": "batch", "skips": True, "dropout": True,
               "in_channels": int(first.shape[1]), "out_channels": int(last.shape[1])}
    generator = build_reference_generator(**network)
    _fits(state, generator, depth, path)
    generator.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in reference_to_ours(state, depth).items()})
    _check_output(generator, path)
    direction, task, data = REFERENCE_MODELS.get(name, ("AtoB", "", "its training data"))
    card = GeneratorCard(network={**network, "layout": "reference"}, sketch_style=SKETCH_STYLES.get(name),
                         licence={"license": _TERMS.format(data=data)}, source=source or str(path),
                         note=f"{name or path.name}: {task or 'a reference pix2pix generator'} (pairs {direction})")
    return save_generator(out, generator, card)


def _converted(path: Path, name: str) -> bool:
    """True when `path` is what an earlier download-model of `name` wrote (its card's source is `<name>.pth`)."""
    try:
        return read_generator(path)[1].source.endswith(f"/{name}.pth")
    except (OSError, ValueError):
        return False


def download_model(name: str, out_dir: str | Path, *, base_url: str = DEFAULT_URL, progress: bool = True) -> Path:
    """Download a reference pretrained generator by name and convert it: returns `<out_dir>/<name>.pt`.

    The reference's file is downloaded beside it as `.<name>.reference.pth` (fetch.py: resumed when
    interrupted, its marker proving it ours) and deleted once converted or refused; a file of that
    name this command did not download is refused and left as it is.
    """
    if name not in REFERENCE_MODELS:
        raise ValueError(f"unknown model {shown(name)!r}: choose one of {', '.join(REFERENCE_MODELS)}")
    out_dir = Path(out_dir)
    target = out_dir / f"{name}.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    if target.exists() and not _converted(target, name):
        raise RefusedError(f"{shown(target)}: exists and is not the converted {name} model; it is left as it is "
                           "(choose another --out)")
    raw = out_dir / f".{name}.reference.pth"
    url = f"{base_url.rstrip('/')}/{name}.pth"
    with exclusive_lock(out_dir / f".{name}.reference.pth.lock", wait=True):
        f, ours = open_download(url, raw, progress=progress, max_bytes=MAX_BYTES)
        with f:
            if not ours:
                raise RefusedError(f"{shown(raw)}: was not downloaded by this command; it is left as it is: move it "
                                   "away and run the same command again")
            try:
                convert_reference_generator(raw, target, name=name, source=url)
            finally:
                discard_download(raw, raw, f.fileno())  # converted, or not a model (an HTML page...): never reused
    return target
