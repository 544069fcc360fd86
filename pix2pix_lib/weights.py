"""Reading torch files safely: plain tensors only, finite values, and weights that fit their network.

Every `.pt` the library opens (generator files, training checkpoints, FID/LPIPS backbones) goes
through `load_plain`: `torch.load(..., weights_only=True)`, with errors that say what is wrong in
one line. A file that holds pickled Python objects is refused, never unpickled: loading it could
run code (PyTorch's own message suggests retrying with weights_only=False - we never do).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


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
