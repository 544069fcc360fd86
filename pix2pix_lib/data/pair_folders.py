"""Two folders -> one A|B dataset: the data question people ask most (`combine_A_and_B.py` upstream).

    A/cat.jpg  +  B/cat.png  -->  <out>/train/cat.png  (A on the left, B on the right, square)

Files are matched by name without the suffix (`cat.jpg` pairs with `cat.png`); names found in only
one folder are reported, never guessed at. A and B of a pair must show the same picture, so their
sizes must match (an A of 640x480 with a B of 512x512 is refused by name: one was cropped or scaled
and the other not). Photos that are not square are made square in one of two ways, said in the
summary and the manifest: `pad` (white borders, nothing lost; the default) or `crop` (the centre,
borders lost). Then both are resized to `size`. The inputs are only read; the output folder
appears whole when everything succeeded (`files.atomic_output_dir`).
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..files import atomic_output_dir
from ..folders import names, shown
from .masked_photos import find_images
from .paired import load_rgb, make_pair_image

FITS = ("pad", "crop")


def match_folders(a_dir: str | Path, b_dir: str | Path) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """([(A file, B file), ...] by name, names only in A, names only in B)."""
    a, b = ({p.stem: p for p in find_images(folder)} for folder in (a_dir, b_dir))
    pairs = [(a[n], b[n]) for n in sorted(set(a) & set(b))]
    return pairs, sorted(set(a) - set(b)), sorted(set(b) - set(a))


def fit_square(image: np.ndarray, fit: str) -> np.ndarray:
    """Pad with white (`pad`) or cut the centre (`crop`) to a square; a square image is unchanged."""
    h, w = image.shape[:2]
    if h == w:
        return image
    if fit == "pad":
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        return np.pad(image, [(top, side - h - top), (left, side - w - left), (0, 0)], constant_values=255)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    shrink = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def pair_folders(a_dir: str | Path, b_dir: str | Path, out_dir: str | Path, *, size: int = 256,
                 fit: str = "pad", val_fraction: float = 0.1, seed: int = 0, skip_bad: bool = False,
                 progress: bool = True) -> Path:
    """Pair `a_dir` and `b_dir` by name into `out_dir/{train,val}/<name>.png` (A|B) + manifest.json.

    Parameters:
        size: side of A and B in the pairs.
        fit: how a photo that is not square becomes square: "pad" (white borders) or "crop" (centre).
        val_fraction: share of the pairs (by name, seeded) held out in val/ (0: none; else at least 1).
        skip_bad: warn about and leave out pairs whose sizes differ or whose files do not read,
            instead of stopping. Names found in one folder only are always reported and left out.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if not 8 <= size <= 2048:
        raise ValueError(f"size must be between 8 and 2048 px, got {size}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    for folder in (a_dir, b_dir):  # the inputs are only read: not even a new folder inside them
        if Path(folder).resolve() in (Path(out_dir).resolve(), *Path(out_dir).resolve().parents):
            raise ValueError(f"--out {shown(out_dir)} is inside the input folder {shown(folder)}: "
                             "choose a folder outside both inputs")
    pairs, only_a, only_b = match_folders(a_dir, b_dir)
    if not pairs:
        raise FileNotFoundError(f"{shown(a_dir)} and {shown(b_dir)} share no file name (A has "
                                f"{names(only_a)}; B has {names(only_b)})")
    n_val = 0 if val_fraction == 0 or len(pairs) < 2 else max(1, round(val_fraction * len(pairs)))
    held_out = {a.stem for a, _ in random.Random(seed).sample(pairs, n_val)}
    problems, fitted = [], 0
    counts = {"train": 0, "val": 0}
    with atomic_output_dir(out_dir, kind="paired folders", inputs=(a_dir, b_dir)) as tmp:
        for split in ("train", "val"):
            (tmp / split).mkdir()
        for a_path, b_path in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
            try:
                a, b = load_rgb(a_path), load_rgb(b_path)
                if a.shape != b.shape:
                    raise ValueError(f"{shown(a_path)} is {a.shape[1]}x{a.shape[0]} but {shown(b_path)} is "
                                     f"{b.shape[1]}x{b.shape[0]}: A and B must show the same picture")
            except ValueError as err:
                if not skip_bad:
                    raise
                warnings.warn(str(err), stacklevel=2)
                problems.append(str(err))
                continue
            fitted += a.shape[0] != a.shape[1]
            a, b = (_resized(fit_square(x, fit), size) for x in (a, b))
            split = "val" if a_path.stem in held_out else "train"
            make_pair_image(a, b).save(tmp / split / f"{a_path.stem}.png", compress_level=1)
            counts[split] += 1
        if counts["train"] == 0:
            raise RuntimeError(f"no usable pair ({len(problems)} skipped); nothing was written")
        manifest = {"name": "paired-folders", "size": size, "fit": fit, "seed": seed,
                    "counts": {**counts, "skipped": len(problems), "only_in_a": len(only_a),
                               "only_in_b": len(only_b), f"{'padded' if fit == 'pad' else 'cropped'}": fitted},
                    "only_in_a": only_a, "only_in_b": only_b, "skipped": problems,
                    "a": str(a_dir), "b": str(b_dir), "pair_layout": "A|B: A from the first folder, B from the second"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Path(out_dir)
