"""The datasets a training run reads, built from its TrainConfig (its batches: train/batches.py)."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from .paired import PairedImageDataset
from .sketch_augment import DoodleAugment


def make_datasets(config: TrainConfig, data_root: str | Path):
    """(train, val) paired datasets for `config` (jitter and flips on train only)."""
    augment = DoodleAugment() if config.augment == "doodle" else None  # TrainConfig checked the name
    common = dict(image_size=config.image_size, direction=config.direction)
    train = PairedImageDataset(data_root, "train", load_size=config.load_size, flip=config.flip,
                               augment=augment, **common)
    val = PairedImageDataset(data_root, "val", flip=False, **common)
    return train, val
