"""The processes of a torchrun job: joining it, and keeping every process's networks the same.

Outside torchrun every function here does nothing (one process, world size 1).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..runtime import rank_and_world


def join_torchrun(config):
    """Under torchrun (LOCAL_RANK set): create the process group; returns the config with this process's device.

    gloo on CPU, nccl on CUDA; each CUDA process is bound to its own GPU before the group exists,
    so NCCL uses the right one. Outside torchrun: the config unchanged. `config` is a TrainConfig,
    or a dict of changes to a resumed run's settings.
    """
    if not (torch.distributed.is_available() and "LOCAL_RANK" in os.environ) or torch.distributed.is_initialized():
        return config
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        config = {**config, "device": device} if isinstance(config, dict) else config.replace(device=device)
    torch.distributed.init_process_group(backend)
    return config


def leave_torchrun() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def average_gradients(module: nn.Module) -> None:
    """All-reduce and average the gradients of `module` across torch.distributed processes.

    This is the arithmetic DistributedDataParallel performs. We call it by hand because pix2pix
    runs D three times per step (real pair, fake pair, then inside G's loss with D frozen), and
    DDP's wrapper expects one forward per backward. One flat all_reduce per network.
    """
    _, world = rank_and_world()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    """The average of each value over the torchrun processes (each trained on its own shard)."""
    world = rank_and_world()[1]
    if world == 1:
        return values
    keys = sorted(values)
    device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    flat = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(flat)
    return dict(zip(keys, (flat / world).tolist()))


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's batch-norm running statistics to every rank (they drift apart per shard)."""
    if rank_and_world()[1] > 1:
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)
