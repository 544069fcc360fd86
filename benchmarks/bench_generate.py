"""Generation speed on this machine: generator inference (fp32 vs bf16 autocast) and preprocessing.

    .venv/bin/python benchmarks/bench_generate.py [--repeats 10] [--threads 2]

Issue #5's target: at most 100 ms per 256x256 image on the course's 2-core CPU. Prints one line
per setting (median of --repeats runs after warm-up), batch 1, eval mode, torch.no_grad.

Two clocks: wall time, and the process's CPU time. On a busy machine (a training run beside the
benchmark) wall time is inflated by waiting for a core; CPU time is not, so with --threads 1 the
CPU time is close to what an idle machine's wall time would be.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pix2pix_lib.config import PRESETS  # noqa: E402
from pix2pix_lib.weights import SHIPPED_WEIGHTS, load_generator  # noqa: E402
from pix2pix_lib.preprocess import preprocess_sketch  # noqa: E402
from pix2pix_lib.models import build_generator, count_parameters  # noqa: E402

DOODLE = Path(__file__).resolve().parents[1] / "pix2pix_lib" / "assets" / "doodles" / "house.png"


def median_ms(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median (wall ms, CPU ms) of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def bench_generator(name: str, generator: torch.nn.Module, size: int, repeats: int) -> None:
    generator.eval()
    x = torch.randn(1, 3, size, size)
    for precision in ("fp32", "bf16"):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                generator(x)
        wall, cpu = median_ms(run, repeats)
        print(f"{name:<34} {size:>4} px  {precision}  {wall:7.1f} ms wall  {cpu:7.1f} ms cpu  "
              f"({count_parameters(generator) / 1e6:.1f} M params)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, batch 1, median of {args.repeats}, "
          f"{os.cpu_count()} cores, load average {load:.1f}")

    torch.manual_seed(0)
    bench_generator("paper G (ngf 64)", build_generator(image_size=256, ngf=64), 256, args.repeats)
    if SHIPPED_WEIGHTS.is_file():
        shipped, card = load_generator(SHIPPED_WEIGHTS)
        cfg = card.network
        label = f"shipped G (ngf {cfg['ngf']})"
    else:
        cfg = {"image_size": PRESETS["quick"].image_size, "ngf": PRESETS["quick"].ngf}
        shipped = build_generator(image_size=cfg["image_size"], ngf=cfg["ngf"])
        label = f"shipped-size G (ngf {cfg['ngf']}, random)"
    bench_generator(label, shipped, cfg["image_size"], args.repeats)
    if cfg["image_size"] != 256:  # the same width at the paper's size
        bench_generator(f"shipped-size G (ngf {cfg['ngf']}) at 256", build_generator(image_size=256, ngf=cfg["ngf"]),
                        256, args.repeats)

    for size in sorted({cfg["image_size"], 256}):
        wall, cpu = median_ms(lambda: preprocess_sketch(DOODLE, image_size=size), args.repeats)
        print(f"{'preprocess_sketch (house.png)':<34} {size:>4} px        {wall:7.1f} ms wall  {cpu:7.1f} ms cpu")


if __name__ == "__main__":
    main()
