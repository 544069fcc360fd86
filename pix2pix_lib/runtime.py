"""Where and how the networks run: device, precision, seeding, and the processes of a torchrun job.

Small facts that training, generation, evaluation and the benchmarks all need, kept below them.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn


def select_device(name: str = "auto") -> torch.device:
    """"auto": CUDA if present, then Apple's MPS, else CPU. Any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def auto_precision(device: torch.device) -> str:
    """The fastest precision that trains well on `device`.

    CUDA: bf16 where the GPU supports it (Ampere and newer), else fp16 with a gradient scaler.
    CPU: bf16 only with native bf16 instructions (avx512_bf16 / AMX): 1.4x here; emulated, it
    gains nothing. Anything else: fp32.
    """
    if device.type == "cuda":
        # Compute capability 8.0+ (Ampere) has bf16 tensor cores; is_bf16_supported() also says yes for
        # older GPUs that only emulate bf16 (a T4), which is slower there than fp16 with a scaler.
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "fp32"
        return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"
    return "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


# --- data parallel across processes -------------------------------------------------------------
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
    flat = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(flat)
    return dict(zip(keys, (flat / world).tolist()))


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's batch-norm running statistics to every rank (they drift apart per shard)."""
    if rank_and_world()[1] > 1:
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)


def rng_states() -> dict:
    """Every random number generator's state (Python, NumPy, torch, CUDA), for a checkpoint.

    In a form `torch.load(weights_only=True)` accepts: tensors, lists, ints, strings.
    """
    return {"torch": torch.get_rng_state(), "numpy": _numpy_state_to_tensors(np.random.get_state()),
            "python": _python_state_to_list(random.getstate()),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(rng: dict) -> None:
    """Restore what `rng_states` saved: a resumed run draws the same dropout and jitter."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state(_numpy_state_from_tensors(rng["numpy"]))
    random.setstate(_python_state_from_list(rng["python"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _numpy_state_to_tensors(state) -> list:
    return [state[0], torch.from_numpy(state[1].astype(np.int64)), *state[2:]]


def _numpy_state_from_tensors(state: list):
    return (state[0], state[1].numpy().astype(np.uint32), *state[2:])


def _python_state_to_list(state) -> list:
    return [state[0], list(state[1]), state[2]]


def _python_state_from_list(state: list):
    return (state[0], tuple(state[1]), state[2])


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


# --- where and what ---------------------------------------------------------------------------------
def hardware_info(device: torch.device) -> dict:
    """CPU model, GPU name, threads and versions: what a reader needs to compare wall times."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"device": str(device), "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["summary"] = f"{info['gpu']} (CUDA {info['cuda']}), {cpu}, {os.cpu_count()} CPU cores"
    else:
        info["summary"] = f"{cpu}, {info['torch_threads']} torch threads ({os.cpu_count()} CPU cores), no GPU"
    return info


class PrintHandler(logging.Handler):
    """Log records printed to whatever sys.stdout is when they happen (one line each)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stdout if record.levelno < logging.WARNING else sys.stderr)



def print_library_logs() -> None:
    # The library reports through `logging` (one line per epoch, skipped files); a command prints it.
    logger = logging.getLogger("pix2pix_lib")
    if not any(isinstance(h, PrintHandler) for h in logger.handlers):
        logger.addHandler(PrintHandler())
    logger.setLevel(logging.INFO)
