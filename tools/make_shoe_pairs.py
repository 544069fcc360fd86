"""Make the small shoe pairs notebook 07 trains on: pix2pix_lib/assets/shoes/train/.

    .venv/bin/python tools/make_shoe_pairs.py ../shared/data/edges2shoes-2k

Reads files 1-1000 of the shared edges2shoes pairs (those show shoes; 1001-2000 show handbags),
leaves out the shoes in assets/shoes/val/ (they are the lesson's validation pairs), takes `--count`
of the rest spread evenly over the numbers, and writes each pair downsized to `--size` px per side
(edges and photo resized apart, so no colour bleeds across the seam) as a JPEG named
shoe_<number>_AB.jpg. Same source, terms and notice as val/ (assets/shoes/TERMS.txt). Running it
again with the same arguments gives the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pix2pix_lib.imaging import open_image, save_image_atomic  # noqa: E402 - the project's reader, from the checkout

ASSETS = ROOT / "pix2pix_lib" / "assets" / "shoes"
SHOE_NUMBERS = range(1, 1001)  # files 1-1000 of the shared set are shoes


def held_out() -> set[int]:
    """The shoe numbers already in val/ (shoe_5_AB.jpg ...): never in train/."""
    return {int(path.name.split("_")[1]) for path in (ASSETS / "val").glob("shoe_*_AB.jpg")}


def chosen_numbers(count: int) -> list[int]:
    candidates = [n for n in SHOE_NUMBERS if n not in held_out()]
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]


def find_pair(source: Path, number: int) -> Path:
    for split in ("train", "val", ""):
        path = source / split / f"{number}_AB.jpg"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{number}_AB.jpg: not in {source} (train/, val/ or the folder itself)")


def small_pair(path: Path, size: int) -> Image.Image:
    pair = open_image(path).convert("RGB")
    half = pair.width // 2
    out = Image.new("RGB", (2 * size, size))
    for i, box in enumerate(((0, 0, half, pair.height), (half, 0, pair.width, pair.height))):
        out.paste(pair.crop(box).resize((size, size), Image.LANCZOS), (i * size, 0))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the edges2shoes pairs (1_AB.jpg ..., in train/ and val/ or flat)")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=64, help="pixels per side of each half")
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args(argv)
    out = ASSETS / "train"
    sources = {number: find_pair(args.source, number) for number in chosen_numbers(args.count)}  # all found first
    pairs = {f"shoe_{n}_AB.jpg": small_pair(path, args.size) for n, path in sources.items()}
    out.mkdir(exist_ok=True)
    for path in sorted(out.glob("shoe_*_AB.jpg")):  # files this script made before and no longer makes
        if path.name not in pairs:
            path.unlink()
    total = 0
    for name, image in pairs.items():
        save_image_atomic(image, out / name, quality=args.quality, subsampling=0)  # whole or not at all
        total += (out / name).stat().st_size
    print(f"{args.count} pairs of {args.size} px in {out.relative_to(ROOT)}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
