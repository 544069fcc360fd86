"""Carvana-style preparation: photos + object masks -> edge|photo pairs.

The seed project trained on the Carvana car photos (Kaggle, 16 angles per car, 1918x1280 JPEGs
with GIF masks). The pipeline, one step per function so notebook 01 can show each:

    photo, mask --remove_background--> object on white
                --pad_to_square------> square, aspect ratio kept
                --resize-------------> size x size                      = B (the target)
                --edges_for----------> black strokes on white           = A (the input)
                --make_pair_image----> A|B PNG in <out>/train or <out>/val

Without masks (`masks_dir=None`: Carvana's test photos, a user's own photos of an object in front
of a plain wall) the masks are made here by `masks.object_masks`, one object's views together; a
mask that fails its quality check is dropped (counted in the manifest, with the reason), never used.

Layouts read: Carvana's own (`train/<car>_<NN>.jpg` with `train_masks/<car>_<NN>_mask.gif`) and
any images folder + masks folder whose files match by name (a mask may add `_mask` to the stem).
The split holds out whole objects: `<car>_<NN>` files share the object `<car>`, so no car is seen
from one angle in training and from another in validation (the seed held out 5 cars).
"""

from __future__ import annotations

import json
import logging
import random
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..imaging import IMAGE_SUFFIXES, open_image
from .edges import EDGE_STYLES, edges_for
from .masks import object_masks
from .paired import load_rgb, make_pair_image
from ..files import atomic_output_dir, shown

log = logging.getLogger(__name__)
MASK_SUFFIXES = (".gif", ".png", ".jpg", ".jpeg", ".bmp")
# Carvana's names: a 12-hex-digit car id and a 2-digit angle (01..16). Only those are grouped: a
# looser pattern would make a camera's IMG_0001, IMG_0002, ... all one object.
_ANGLE = re.compile(r"^(?P<object>[0-9a-f]{12})_(?P<angle>\d{2})$")


def object_id(stem: str) -> str:
    """The object a photo shows: Carvana's '<car>_<NN>' -> '<car>'; any other name is its own object."""
    match = _ANGLE.match(stem)
    return match["object"] if match else stem


def _mask_stem(path: Path) -> str:
    stem = path.stem
    return stem[: -len("_mask")] if stem.endswith("_mask") else stem


def find_image_mask_pairs(images_dir: str | Path, masks_dir: str | Path, *,
                          skip_bad: bool = False) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Match photos with masks by name. Returns ([(image, mask), ...], [problems skipped]).

    An image without a mask, or a mask without an image, raises FileNotFoundError naming the
    file - or, with skip_bad=True, is reported as a warning and left out.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{shown(folder)}: no such folder")
    images = {p.stem: p for p in find_images(images_dir)}  # two photos with one name refused there
    masks = {_mask_stem(p): p for p in sorted(masks_dir.iterdir())
             if p.suffix.lower() in MASK_SUFFIXES and not p.name.startswith(".")}
    problems = [f"{shown(images[s])}: image without a mask (looked for {shown(masks_dir / s)}[_mask].*)"
                for s in sorted(set(images) - set(masks))]
    problems += [f"{shown(masks[s])}: mask without an image (looked for {shown(images_dir / s)}.*)"
                 for s in sorted(set(masks) - set(images))]
    if problems and not skip_bad:
        raise FileNotFoundError(problems[0] + (f" (and {len(problems) - 1} more problems)"
                                               if len(problems) > 1 else ""))
    for problem in problems:
        warnings.warn(problem, stacklevel=2)
    pairs = [(images[s], masks[s]) for s in sorted(set(images) & set(masks))]
    return pairs, problems


def find_images(images_dir: str | Path) -> list[Path]:
    """The photos of a folder (our image formats, hidden files left out), sorted by name.

    Two photos with one name (car_01.jpg, car_01.png) are refused: each photo's pair is named after it.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{shown(images_dir)}: no such folder")
    images = [p for p in sorted(images_dir.iterdir())
              if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    if not images:
        raise FileNotFoundError(f"{shown(images_dir)}: contains no {'/'.join(IMAGE_SUFFIXES)} images")
    first: dict[str, Path] = {}
    for path in images:
        if first.setdefault(path.stem, path) is not path:
            raise ValueError(f"{shown(images_dir)}: two images named {path.stem!r} "
                             f"({first[path.stem].name} and {path.name}); which one is meant is unclear")
    return images


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask as bool (H, W): 0/1 GIFs (Carvana), 0/255 PNGs, or an RGBA image's alpha."""
    im = open_image(path)
    if im.mode in ("RGBA", "LA"):
        array = np.asarray(im.getchannel("A"))
    else:
        array = np.asarray(im.convert("L"))
    threshold = 127 if array.max() > 127 else 0  # 0/255 masks and 0/1 masks alike
    return array > threshold


def remove_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Object on white: pixels outside the mask become 255. image (H, W, 3), mask (H, W) bool."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} and mask "
                         f"{mask.shape[1]}x{mask.shape[0]} differ in size")
    return np.where(mask[:, :, None], image, 255).astype(np.uint8)


def pad_to_square(image: np.ndarray, *, fill: int = 255) -> np.ndarray:
    """Pad the shorter side equally on both ends, so resizing keeps the aspect ratio."""
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pad = [(top, side - h - top), (left, side - w - left)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, constant_values=fill)


def resize_square(image: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """Square image -> (size, size[, C]); area averaging when shrinking (no aliasing)."""
    interpolation = cv2.INTER_NEAREST if nearest else (
        cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC)
    return cv2.resize(image, (size, size), interpolation=interpolation)


def masked_photo_to_pair(image: np.ndarray, mask: np.ndarray, *, size: int = 256,
                         edge_style: str = "canny") -> tuple[np.ndarray, np.ndarray]:
    """The whole pipeline for one photo: returns A (edges) and B (object on white), (size, size, 3)."""
    b = resize_square(pad_to_square(remove_background(image, mask)), size)  # (S, S, 3)
    small_mask = resize_square(pad_to_square(mask.astype(np.uint8) * 255, fill=0), size, nearest=True)
    a = edges_for(b, edge_style, mask=small_mask, rgb=True)  # (S, S, 3)
    return a, b


def prepare_masked_photos(images_dir: str | Path, masks_dir: str | Path | None, out_dir: str | Path, *,
                          size: int = 256, edge_style: str = "canny", val_cars: int = 5,
                          seed: int = 0, skip_bad: bool = False, progress: bool = True) -> Path:
    """Turn photos + masks into an A|B dataset at `out_dir` (train/, val/, manifest.json).

    Parameters:
        images_dir, masks_dir (path) -- photos and masks, matched by name (see module docstring);
                                masks_dir None: masks are made from the photos (`masks.object_masks`),
                                and the photos whose mask fails its check are left out and counted.
        out_dir (path)       -- created atomically when everything succeeded; of an earlier dataset made
                                here only what its marker lists is replaced (files a user added move
                                into the new one); any other folder (or one holding the inputs) refused.
        size (int)           -- side of A and B.
        edge_style (str)     -- "canny" (thin, detailed) or "sketch" (fewer, thicker strokes).
        val_cars (int)       -- whole objects (cars) held out for validation (>= 1: training needs them).
        seed (int)           -- which objects are held out.
        skip_bad (bool)      -- warn about and skip unreadable or unmatched files instead of stopping.
        progress (bool)      -- show a progress bar.
    """
    if edge_style not in EDGE_STYLES:
        raise ValueError(f"unknown edge style {edge_style!r}: choose one of {sorted(EDGE_STYLES)}")
    if not 8 <= size <= 2048:
        raise ValueError(f"size must be between 8 and 2048 px, got {size}")
    if val_cars < 1:
        raise ValueError(f"val_cars must be >= 1, got {val_cars}: training needs a validation split")
    if masks_dir is None:
        pairs, problems = [(image, None) for image in find_images(images_dir)], []
    else:
        pairs, problems = find_image_mask_pairs(images_dir, masks_dir, skip_bad=skip_bad)
    objects = sorted({object_id(image.stem) for image, _ in pairs})
    if not val_cars < len(objects):
        raise ValueError(f"{shown(images_dir)}: {len(objects)} objects (cars) found, cannot hold out "
                         f"{val_cars} for validation and keep some for training")
    held_out = set(random.Random(seed).sample(objects, val_cars))
    out_dir = Path(out_dir)
    written = {"train": 0, "val": 0}
    dropped: dict[str, str] = {}  # made masks that failed their check: name -> why
    inputs = (images_dir,) if masks_dir is None else (images_dir, masks_dir)
    with atomic_output_dir(out_dir, kind="masked-photo pairs", inputs=inputs) as tmp:
        for split in ("train", "val"):
            (tmp / split).mkdir()
        bar = tqdm(total=len(pairs), desc="pairs", unit="img", disable=not progress)
        for views in _by_object(pairs):
            loaded = _load_views(views, problems, skip_bad)
            if masks_dir is None:
                masks, why = object_masks({path.stem: image for path, image in loaded.items()})
                dropped.update(why)
            else:
                masks = {path.stem: mask for path, (_, mask) in loaded.items()}
            for image_path, image in loaded.items():
                bar.update()
                if image_path.stem not in masks:
                    continue
                image = image if masks_dir is None else image[0]
                a, b = masked_photo_to_pair(image, masks[image_path.stem], size=size, edge_style=edge_style)
                split = "val" if object_id(image_path.stem) in held_out else "train"
                make_pair_image(a, b).save(tmp / split / f"{image_path.stem}.png", compress_level=1)
                written[split] += 1
        bar.close()
        for split, count in written.items():  # train refuses an empty split: so does prepare
            if count == 0:
                raise RuntimeError(f"{shown(images_dir)}: no usable {split} image ({len(problems)} skipped, "
                                   f"{len(dropped)} made masks failed their check); nothing was written")
        manifest = {"name": "masked-photos", "size": size, "edge_style": edge_style, "seed": seed,
                    "counts": {**written, "skipped": len(problems), "masks_dropped": len(dropped)},
                    "val_objects": sorted(held_out), "skipped": problems,
                    "masks_dropped": dict(sorted(dropped.items())),
                    "pair_layout": f"A|B: A = {edge_style} edges, B = photo on white",
                    "images": str(images_dir),
                    "masks": str(masks_dir) if masks_dir is not None else "made from the photos (masks.object_masks)"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if problems:
        log.warning(f"skipped {len(problems)} bad or unmatched files (see {shown(out_dir / 'manifest.json')})")
    if dropped:
        log.warning(f"left out {len(dropped)} of {len(pairs)} photos whose made mask failed its check "
                    f"(reasons in {shown(out_dir / 'manifest.json')})")
    return out_dir


def _by_object(pairs: list[tuple[Path, Path | None]]) -> list[list[tuple[Path, Path | None]]]:
    """The pairs grouped by object (a car's views together), in name order."""
    groups: dict[str, list[tuple[Path, Path | None]]] = {}
    for image_path, mask_path in pairs:
        groups.setdefault(object_id(image_path.stem), []).append((image_path, mask_path))
    return [groups[key] for key in sorted(groups)]


def _load_views(views: list[tuple[Path, Path | None]], problems: list[str], skip_bad: bool) -> dict:
    """{image path: image} (no masks) or {image path: (image, mask)}; bad files raise or join `problems`."""
    loaded = {}
    for image_path, mask_path in views:
        try:
            image = load_rgb(image_path)
            if mask_path is None:
                loaded[image_path] = image
                continue
            mask = load_mask(mask_path)
            if image.shape[:2] != mask.shape:
                raise ValueError(f"{shown(image_path)}: image {image.shape[1]}x{image.shape[0]} and mask "
                                 f"{shown(mask_path)} {mask.shape[1]}x{mask.shape[0]} differ in size")
            if not mask.any():
                raise ValueError(f"{shown(mask_path)}: the mask is empty (no object)")
            loaded[image_path] = (image, mask)
        except ValueError as err:
            if not skip_bad:
                raise
            warnings.warn(str(err), stacklevel=3)
            problems.append(str(err))
    return loaded


