"""How long the offline default dataset takes to build, and how fast the loader feeds training.

    .venv/bin/python benchmarks/bench_openmoji.py            # both sizes, all ~4,500 emoji
    .venv/bin/python benchmarks/bench_openmoji.py --sizes 128 --limit 500

Budget (issue #3, 2-core CPU): whole build <= 60 s at 256 px and <= 20 s at 128 px. The loader
numbers show what the in-memory cache buys: the first epoch decodes PNGs, later ones do not.
Builds go to a temporary folder, deleted afterwards (the data/ folder is not touched).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from pix2pix_lib.data import PairedImageDataset, build_openmoji_dataset


def time_loader(root: Path, image_size: int, n: int) -> dict:
    """Per-item milliseconds: first pass (decode + resize + jitter), second pass (cache hit)."""
    ds = PairedImageDataset(root, "train", image_size=image_size)
    n = min(n, len(ds))
    out = {}
    for label in ("first_epoch_ms", "cached_epoch_ms"):
        start = time.perf_counter()
        for i in range(n):
            ds[i]
        out[label] = 1000 * (time.perf_counter() - start) / n
    ds_nocache = PairedImageDataset(root, "train", image_size=image_size, cache=False)
    start = time.perf_counter()
    for i in range(n):
        ds_nocache[i]
    out["no_cache_ms"] = 1000 * (time.perf_counter() - start) / n
    out["cache_MB"] = round(ds._cache_bytes / 2**20, 1)
    return out


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--limit", type=int, default=None, help="only N emoji (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default 2)")
    parser.add_argument("--loader-items", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    budget = {256: 60, 128: 20}
    print(f"CPUs: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = Path(tmp) / f"openmoji{size}"
            cpu0 = _cpu_seconds()
            start = time.perf_counter()
            build_openmoji_dataset(out, size=size, limit=args.limit, progress=False, workers=args.workers)
            seconds = time.perf_counter() - start
            cpu = _cpu_seconds() - cpu0
            counts = json.loads((out / "manifest.json").read_text())["counts"]
            mb = sum(p.stat().st_size for p in out.rglob("*.png")) / 2**20
            verdict = f"(budget {budget[size]} s)" if size in budget else ""
            print(f"build {size:>3} px: {seconds:6.1f} s {verdict} for {counts['source_files']} SVGs -> "
                  f"{counts['train']} train + {counts['val']} val pairs, "
                  f"{counts['skipped_empty_line']} + {counts['skipped_no_colour']} skipped, {mb:.0f} MB; "
                  f"{1000 * seconds / counts['source_files']:.1f} ms/SVG")
            # CPU seconds of this process and its render workers: / 2 = the wall time on two idle cores.
            print(f"  CPU time {cpu:.1f} s -> about {cpu / 2:.1f} s on 2 otherwise idle cores")
            loader = time_loader(out, size, args.loader_items)
            print(f"  loader {size:>3} px, 1 thread: first epoch {loader['first_epoch_ms']:.2f} ms/item, "
                  f"cached {loader['cached_epoch_ms']:.2f} ms/item, without cache "
                  f"{loader['no_cache_ms']:.2f} ms/item ({loader['cache_MB']} MB cached for "
                  f"{min(args.loader_items, counts['train'])} items)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (other processes on the machine slow the build)")


if __name__ == "__main__":
    main()
