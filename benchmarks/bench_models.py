"""How fast are the paper's networks here? Forward+backward images/s of G and D, G inference latency.

    python benchmarks/bench_models.py                 # 64/128/256, the paper's widths (~2-4 min on 2 cores)
    python benchmarks/bench_models.py --quick         # 64/128, fewer repeats (~30 s)
    python benchmarks/bench_models.py --sizes 256 --batch-sizes 1 4 --repeats 10

A benchmark, not a test: it prints numbers and asserts nothing. Every measurement warms up first
(the first iterations allocate memory and pick kernels), then times `--repeats` iterations and
reports the median. The networks are the paper's: ngf = ndf = 64, batch norm, 70x70 PatchGAN.
Note that "G fwd+bwd" and "D fwd+bwd" are each one network alone; a full pix2pix step runs G once
and D three times (real, fake for D, fake for G) and two optimiser steps, so it is slower than either.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from pix2pix_lib.models import PatchDiscriminator, build_generator  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, *, warmup: int, repeats: int, device: torch.device) -> float:
    """Median seconds per call of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_fn(model, inputs):
    """One forward + backward through `model` (no optimiser: it costs the same for every setting)."""
    def step():
        model.zero_grad(set_to_none=True)
        model(*inputs).float().mean().backward()
    return step


def bench_training(sizes, batch_sizes, *, warmup, repeats, device) -> None:
    print(f"{'net':4s} {'size':>5s} {'batch':>5s} {'ms/iter':>9s} {'images/s':>9s}")
    for size in sizes:
        g = build_generator(image_size=size, ngf=64, norm="batch").to(device).train()
        d = PatchDiscriminator(ndf=64, n_layers=3, norm="batch").to(device).train()
        for batch in batch_sizes:
            a = torch.randn(batch, 3, size, size, device=device)
            b = torch.randn(batch, 3, size, size, device=device)
            for name, model, inputs in [("G", g, (a,)), ("D", d, (a, b))]:
                seconds = time_it(train_step_fn(model, inputs), warmup=warmup, repeats=repeats, device=device)
                print(f"{name:4s} {size:5d} {batch:5d} {1000 * seconds:9.1f} {batch / seconds:9.1f}", flush=True)
        del g, d


def bench_inference(size, *, warmup, repeats, device) -> None:
    g = build_generator(image_size=size, ngf=64, norm="batch").to(device).eval()
    x = torch.randn(1, 3, size, size, device=device)
    print(f"\nG inference, {size}x{size}, batch 1 (eval mode, no grad)")
    for precision in ("fp32", "bf16"):
        def infer():
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                        enabled=precision == "bf16"):
                g(x)
        seconds = time_it(infer, warmup=warmup, repeats=repeats, device=device)
        print(f"  {precision}: {1000 * seconds:7.1f} ms/image", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="image sizes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="batch sizes (default: 1 4 16, or 1 4 at --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="timed iterations (default 5, 3 at --quick)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations before timing")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="sizes 64 and 128, batches 1 and 4, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick and args.sizes == [64, 128, 256]:
        args.sizes = [64, 128]
    batch_sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 4, 16])
    repeats = args.repeats or (3 if args.quick else 5)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {device} ({where}), {torch.get_num_threads()} threads, "
          f"ngf=ndf=64, batch norm, median of {repeats} after {args.warmup} warm-up")
    print("forward + backward of one network:")
    bench_training(args.sizes, batch_sizes, warmup=args.warmup, repeats=repeats, device=device)
    bench_inference(256, warmup=args.warmup, repeats=max(repeats, 5), device=device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
