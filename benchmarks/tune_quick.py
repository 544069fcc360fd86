"""Which settings learn most in 10 minutes of a 2-core CPU? (sizing the `quick` preset)

Quality per training image does not depend on the machine, speed does. So each candidate is
trained for the number of images the 2-core CPU gets through in `--minutes` at that candidate's
measured speed (`--cpu-images-per-s NAME=RATE`, from benchmarks/bench_train.py on the CPU), and
can be run on any device (a GPU finishes the whole sweep in minutes). Prints and writes a table of
best validation L1 per candidate, next to the copy-the-sketch baseline.

    python benchmarks/tune_quick.py --data data/openmoji --out runs/tune --device cuda \
        --cpu-images-per-s q128_32=34 q64_64=52
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pix2pix_lib.config import preset
from pix2pix_lib.experiments import budget_schedule
from pix2pix_lib.metrics import evaluate_predictions
from pix2pix_lib.train import fit
from pix2pix_lib.data.loaders import make_datasets

CANDIDATES = {
    # name: overrides of the quick preset
    "q128_32": dict(image_size=128, ngf=32, ndf=32, batch_size=8),
    "q128_32_lr4": dict(image_size=128, ngf=32, ndf=32, batch_size=8, lr_g=4e-4, lr_d=4e-4),
    "q128_24": dict(image_size=128, ngf=24, ndf=24, batch_size=8),
    "q128_32_d16": dict(image_size=128, ngf=32, ndf=16, batch_size=8),
    "q64_64": dict(image_size=64, ngf=64, ndf=64, batch_size=16),
    "q64_32": dict(image_size=64, ngf=32, ndf=32, batch_size=16),
    "fp32_q128_32": dict(image_size=128, ngf=32, ndf=32, batch_size=8, precision="fp32"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU wall time to simulate")
    parser.add_argument("--cpu-images-per-s", nargs="*", default=[], metavar="NAME=RATE",
                        help="measured training speed of each candidate on the 2-core CPU")
    parser.add_argument("--only", nargs="*", help="candidates to run (default: those with a rate)")
    parser.add_argument("--num-workers", type=int, default=0)
    args = parser.parse_args()

    rates = {k: float(v) for k, v in (item.split("=") for item in args.cpu_images_per_s)}
    names = args.only or [n for n in CANDIDATES if n in rates]
    out = Path(args.out)
    results = {}
    for name in names:
        overrides = dict(CANDIDATES[name])
        rate = rates.get(name) or rates.get(name.removeprefix("fp32_"))
        if rate is None:
            raise SystemExit(f"no --cpu-images-per-s for {name}")
        config = preset("quick", **overrides, device=args.device, num_workers=args.num_workers)
        train_set, val_set = make_datasets(config, args.data)
        budget = int(rate * args.minutes * 60)
        config = budget_schedule(config, len(train_set), budget)  # the ablation study's rule (experiments.py)
        baseline = evaluate_predictions(lambda a: a, torch.utils.data.DataLoader(val_set, batch_size=32))
        start = time.perf_counter()
        history = fit(config, args.data, out / name, resume="auto", progress=False, datasets=(train_set, val_set))
        best = min(history, key=lambda row: row["val_l1"])
        results[name] = {"overrides": overrides, "budget_images": budget, "cpu_images_per_s": rate,
                         "schedule": {k: getattr(config, k) for k in ("epochs", "epochs_decay", "max_steps_per_epoch")},
                         "best_val": {k.removeprefix("val_"): v for k, v in best.items() if k.startswith("val_")},
                         "baseline": baseline, "wall_s_here": time.perf_counter() - start,
                         "device": str(torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")}
        print(f"{name:14s} budget {budget:6d} img  best val L1 {best['val_l1']:.4f}  "
              f"(changed px {best['val_l1_changed']:.4f})  baseline {baseline['l1']:.4f} "
              f"({baseline['l1_changed']:.4f})  [{time.perf_counter() - start:.0f} s]", flush=True)
        (out / f"{name}.json").write_text(json.dumps(results[name], indent=2))


if __name__ == "__main__":
    main()
