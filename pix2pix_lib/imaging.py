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
    """PIL image -> float tensor (3, H, W) in [-1, 1]. Any mode is made RGB first (`pil_to_rgb_array`)."""
    array = pil_to_rgb_array(image).astype(np.float32) / 255.0  # (H, W, 3)
    return normalize_to_neg_one_to_one(torch.from_numpy(array).permute(2, 0, 1).contiguous())


def pil_to_rgb_array(im: Image.Image) -> np.ndarray:
    """PIL image of any mode -> uint8 array (H, W, 3).

    Grayscale and palette images become RGB; transparent images are composited on white (the
    background every dataset here uses); 16-bit images are scaled to 8 bits, not clipped.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale (PNG opens as "I;16" or "I"): scale 0..65535 -> 0..255.
        array = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16).astype(np.float32)
        array = np.clip(array / 257.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[:, :, None], 3, axis=2)
    if im.mode == "F":
        array = np.asarray(im, dtype=np.float32)
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


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
