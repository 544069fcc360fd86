"""Images <-> tensors: the one place that knows the networks work in [-1, 1].

Every other module (datasets, training samples, generation, the canvas, notebooks) converts
through these functions, so the convention cannot drift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_path


def normalize_to_neg_one_to_one(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the range of the generator's Tanh)."""
    return x * 2 - 1


def unnormalize_to_zero_to_one(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (a generator output can overshoot by rounding)."""
    return ((x + 1) / 2).clamp(0, 1)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> float tensor (3, H, W) in [-1, 1]. Any mode is converted to RGB first."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return normalize_to_neg_one_to_one(torch.from_numpy(array).permute(2, 0, 1).contiguous())


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) or (1, 3, H, W) in [-1, 1] -> RGB PIL image."""
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"tensor_to_pil takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got {tuple(x.shape)}")
    array = unnormalize_to_zero_to_one(x.detach().float().cpu()).mul(255).round().byte()
    array = array.expand(3, -1, -1).permute(1, 2, 0).numpy()  # (H, W, 3) uint8
    return Image.fromarray(array, mode="RGB")


def save_image_atomic(image: Image.Image, path: str | Path, **save_kwargs) -> Path:
    """Save a PIL image so that it appears whole or not at all (see `atomic.atomic_path`)."""
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the image format from the suffix {path.suffix!r}")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)
    return path
