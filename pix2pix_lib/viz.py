"""Pictures shared by training and the notebooks: sample grids and image rows."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.utils import make_grid

from .imaging import unnormalize_to_zero_to_one


def make_sample_grid(real_a: torch.Tensor, fake_b: torch.Tensor, real_b: torch.Tensor) -> Image.Image:
    """One row per example: input | generated | target. Tensors (N, 3, H, W) in [-1, 1]."""
    if not (real_a.shape == fake_b.shape == real_b.shape):
        raise ValueError(f"shapes differ: {tuple(real_a.shape)}, {tuple(fake_b.shape)}, {tuple(real_b.shape)}")
    triplets = torch.stack([real_a, fake_b, real_b], dim=1).flatten(0, 1)  # (3N, 3, H, W), row-major
    grid = make_grid(unnormalize_to_zero_to_one(triplets.detach().float().cpu()), nrow=3, padding=2,
                     pad_value=1.0)
    return Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
