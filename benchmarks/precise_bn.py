"""Eval-mode vs batch-statistics validation L1 per epoch, with and without precise BN (issue #16).

Trains the same short run twice on real pairs (default: ../shared/data/edges2shoes-2k, 128 px,
ngf = ndf = 32, batch 8) - once keeping batch norm's running averages, once re-estimating them
before every validation - and prints, per epoch, G's validation L1 in eval mode (what "best",
`colorize` and the canvas use) next to its L1 with each batch's own statistics (batches of 8),
with dropout on (the paper's test time) and off (eval mode but for the statistics).

    .venv/bin/python benchmarks/precise_bn.py --steps 100 --epochs 3 --decay 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pix2pix_lib.config import preset  # noqa: E402
from pix2pix_lib.data.loaders import make_datasets  # noqa: E402
from pix2pix_lib.generate import generation_mode  # noqa: E402
from pix2pix_lib.metrics import evaluate_predictions  # noqa: E402
from pix2pix_lib.train import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def batch_statistics_l1(generator, val_loader, *, dropout: bool) -> float:
    """Validation L1 with batch statistics of each batch of 8; dropout on (the paper's test time) or off."""
    torch.manual_seed(0)
    with generation_mode(generator, "paper"):
        if not dropout:
            for m in generator.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.eval()
        return evaluate_predictions(lambda a: generator(a), val_loader)["l1"]


def run(data: Path, out: Path, *, precise_bn: int, steps: int, epochs: int, decay: int, size: int) -> list[tuple]:
    config = preset("quick", image_size=size, epochs=epochs, epochs_decay=decay, max_steps_per_epoch=steps,
                    precise_bn_batches=precise_bn, device="cpu")
    train_set, val_set = make_datasets(config, data)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size)
    rows = []

    def record(report):  # after precise BN (if on) and validation: the generator as it is saved
        g = report.model.generator
        rows.append((report.epoch, report.val["l1"], batch_statistics_l1(g, val_loader, dropout=True),
                     batch_statistics_l1(g, val_loader, dropout=False)))

    fit(config, data, out, progress=False, on_epoch_end=record, datasets=(train_set, val_set))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "edges2shoes-2k"))
    parser.add_argument("--steps", type=int, default=100, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--decay", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: run(Path(args.data), Path(tmp) / f"bn{n}", precise_bn=n, steps=args.steps, epochs=args.epochs,
                          decay=args.decay, size=args.size) for n in (0, 50)}
    print("validation L1 per epoch: eval mode (what is saved and used) next to batch statistics with dropout on / off")
    print("epoch | running averages: eval  batch(on)  batch(off) | precise BN (50 batches): eval  batch(on)  batch(off)")
    for (epoch, *a), (_, *b) in zip(results[0], results[50]):
        print(f"{epoch:5d} | " + "  ".join(f"{v:.4f}" for v in a) + " | " + "  ".join(f"{v:.4f}" for v in b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
