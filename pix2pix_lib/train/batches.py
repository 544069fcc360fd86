"""The batches a run draws, each stream seeded so that a resumed run draws exactly the same.

    make_train_loader    shuffled training batches; the order depends only on (seed, epoch, rank)
    calibration_loader   training batches for precise BN, from a stream of their own
    fixed_samples        the validation pairs of every sample grid
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..runtime import rank_and_world


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_train_loader(config: TrainConfig, dataset, epoch: int) -> DataLoader:
    """Shuffled batches; the order depends only on (seed, epoch), so a resumed run sees the same."""
    rank, world = rank_and_world()
    # Seeds the shuffle (one process) or the workers' jitter streams: different on every rank.
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 7919 * rank)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank,
                                                      shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=generator, num_workers=config.num_workers, drop_last=len(dataset) > config.batch_size,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def fixed_samples(val_set, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` validation pairs as (A, B) batches (n, 3, S, S): the per-epoch sample grid's rows.

    Spread over the split (sorted file names cluster similar emoji), each the first pair from its
    place on that has something to colour: a pair whose target is its sketch (©, ®, letters) shows
    nothing. The same pairs every epoch, and for every run on the same data.
    """
    total, picked = len(val_set), []
    n = min(n, total)
    for k in range(n):
        start, end = k * total // n, (k + 1) * total // n  # each slot looks in its own stretch only
        for i in range(start, end):
            pair = val_set[i]
            if (pair["A"] - pair["B"]).abs().mean() > 0.015:  # 2 of 255 levels
                picked.append(i)
                break
        else:  # nothing to colour in the whole stretch: its first pair anyway
            picked.append(start)
    pairs = [val_set[i] for i in picked]
    return torch.stack([p["A"] for p in pairs]), torch.stack([p["B"] for p in pairs])


def calibration_loader(config: TrainConfig, dataset, epoch: int) -> DataLoader:
    """Training batches for re-estimating batch-norm statistics: shuffled by (seed, epoch), in this process."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 104_729)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator,
                      drop_last=len(dataset) > config.batch_size)
