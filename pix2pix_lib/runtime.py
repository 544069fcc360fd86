"""Where and how the networks run: device, precision, the process's rank, and the machine.

Small facts that training, generation, evaluation and the benchmarks all need, kept below them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


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


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


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
