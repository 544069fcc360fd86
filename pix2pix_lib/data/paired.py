"""The paired A|B format and the dataset that reads it (pix2pix paper, section 4 and appendix 6.2).

One file holds one training pair: the input A on the left half, the target B on the right half,
so the image is twice as wide as it is tall (edges2shoes: 512x256 JPEGs). A dataset is a folder:

    <root>/train/*.png|jpg      <root>/val/*.png|jpg

Every dataset this project makes (OpenMoji, Carvana-style photos) is written in this format, and
`PairedImageDataset` is the one reader training, evaluation and the notebooks use.

The paper's augmentation ("random jitter"): resize the 256x256 halves to 286x286, take a random
256x256 crop, mirror at random. A and B must move together, or the network would be asked to
shift pixels it cannot see - so both halves go through one torchvision v2 call as `tv_tensors.Image`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from tqdm.auto import tqdm
from torchvision.transforms import v2

from ..imaging import IMAGE_SUFFIXES, bomb_message, check_image_size, normalize_to_neg_one_to_one, open_image, pil_to_rgb_array

JITTER_RATIO = 286 / 256  # the paper's load size relative to the crop size
# Decoded pairs kept in memory beyond this many bytes are decoded again each epoch
# (edges2shoes at 286 px would need ~24 GB). Override with PIX2PIX_CACHE_GB.
DEFAULT_CACHE_GB = 4.0

Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------------------------
# Reading and writing pair images


def load_rgb(path: str | Path) -> np.ndarray:
    """Read any image file as an 8-bit RGB array (H, W, 3), upright (EXIF orientation applied).

    Grayscale and palette images become RGB; transparent images are composited on white (the
    background every dataset here uses); 16-bit images are scaled to 8 bits, not clipped.
    A missing, corrupt, truncated or oversized file raises an error naming it (`open_image`).
    """
    return pil_to_rgb_array(open_image(path))


def split_pair_array(array: np.ndarray, *, path: str | Path = "<array>") -> tuple[np.ndarray, np.ndarray]:
    """(H, 2H, 3) -> A (H, H, 3), B (H, H, 3). The width must be exactly twice the height."""
    h, w = array.shape[:2]
    if w != 2 * h:
        raise ValueError(f"{path}: a pair image must be twice as wide as tall (A left, B right), "
                         f"got {w}x{h}")
    return array[:, :h], array[:, h:]


def make_pair_image(a: np.ndarray | Image.Image, b: np.ndarray | Image.Image) -> Image.Image:
    """Put A (left) and B (right) side by side: the file format of every dataset here."""
    a = np.asarray(a.convert("RGB") if isinstance(a, Image.Image) else a)
    b = np.asarray(b.convert("RGB") if isinstance(b, Image.Image) else b)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if b.ndim == 2:
        b = np.repeat(b[:, :, None], 3, axis=2)
    if a.shape != b.shape or a.shape[0] != a.shape[1]:
        raise ValueError(f"A and B must be square and the same size, got {a.shape} and {b.shape}")
    return Image.fromarray(np.concatenate([a, b], axis=1).astype(np.uint8), mode="RGB")


def list_pair_files(folder: str | Path) -> list[Path]:
    """The image files of one split folder, sorted; errors name the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected <root>/<split>/ with A|B images)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{folder}: contains no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def pair_file_problem(path: str | Path) -> str | None:
    """What is wrong with one pair file, from its header and its size alone (no decoding), or None.

    Catches what would otherwise stop a training run half-way: an empty or truncated file (PNG
    without its IEND chunk, JPEG without its end marker), a file that is no image, a decompression
    bomb, a picture that is not twice as wide as tall.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                (w, h), fmt = im.size, im.format
        check_image_size((w, h), path)
        with open(path, "rb") as f:
            f.seek(max(0, size - 1024))
            tail = f.read()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return bomb_message(path, err).removeprefix(f"{path}: ")
    except (OSError, ValueError, SyntaxError) as err:
        return str(err).removeprefix(f"{path}: ") or type(err).__name__
    if (fmt == "PNG" and b"IEND" not in tail[-16:]) or (fmt == "JPEG" and b"\xff\xd9" not in tail):
        return f"truncated {fmt} file ({size} bytes, its end is missing)"
    if w != 2 * h:
        return f"a pair image must be twice as wide as tall (A left, B right), got {w}x{h}"
    return None


def check_pair_files(files: list[Path], *, skip_bad: bool = False, where: str | Path = "") -> list[Path]:
    """The usable files of `files`; with skip_bad=False any bad one raises ValueError listing the first few.

    Run before training starts: one corrupt file among thousands must not stop a run at step 62.
    """
    problems = [(path, problem) for path in files if (problem := pair_file_problem(path))]
    if not problems:
        return files
    listed = "; ".join(f"{path}: {problem}" for path, problem in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    if not skip_bad:
        raise ValueError(f"{len(problems)} of {len(files)} files in {where} cannot be used: {listed}{more}. "
                         "Fix or remove them, or pass --skip-bad to train without them")
    warnings.warn(f"left out {len(problems)} of {len(files)} bad files in {where}: {listed}{more}", stacklevel=2)
    bad = {path for path, _ in problems}
    good = [path for path in files if path not in bad]
    if not good:
        raise ValueError(f"{where}: none of its {len(files)} files can be used: {listed}{more}")
    return good


def files_fingerprint(files: list[Path], root: str | Path) -> str:
    """A hash of the files' names (relative to `root`) and sizes: which data a run trained on.

    Cheap (no file is read) and unchanged when the dataset folder is moved or renamed.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{Path(path).relative_to(root).as_posix()}\t{Path(path).stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# The dataset


class PairedImageDataset(Dataset):
    """A|B pairs from `<root>/<split>/`, as float tensors in [-1, 1].

    Parameters:
        root (path)          -- dataset folder holding `train/`, `val/` (and maybe `test/`).
        split (str)          -- sub-folder to read.
        image_size (int)     -- side of the square A and B the network sees.
        load_size (int)      -- resize to this before the random crop (the paper: 286 for 256).
                                None: round(image_size * 286 / 256) for "train", ignored otherwise.
                                Pass load_size=image_size to switch the crop jitter off.
        flip (bool)          -- random horizontal mirroring (train split only).
        direction (str)      -- "AtoB": input = left half; "BtoA": input = right half.
        augment (callable)   -- optional (A uint8 (3,S,S), B uint8, torch.Generator) -> (A, B),
                                applied after the jitter, before normalisation (e.g. doodle
                                augmentations from `sketch_augment`). None: no extra augmentation.
        cache (bool)         -- keep decoded (and resized) uint8 pairs in memory, so epochs after
                                the first do no decoding: on a CPU the loader is the bottleneck.
                                Up to PIX2PIX_CACHE_GB (default 4) GB; each DataLoader worker
                                has its own cache, kept across epochs only with
                                persistent_workers=True.

    Items are dicts {"A": (3, S, S) float in [-1, 1], "B": same, "path": str}. Validation and test
    splits get no randomness: each half is resized straight to image_size.
    """

    def __init__(self, root: str | Path, split: str = "train", *, image_size: int = 256,
                 load_size: int | None = None, flip: bool = True, direction: str = "AtoB",
                 augment: Augment | None = None, cache: bool = True):
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.split = split
        self.files = list_pair_files(self.root / split)
        self.image_size = image_size
        self.train = split == "train"
        if not self.train:
            load_size = image_size  # evaluation sees the whole picture, no jitter
        elif load_size is None:
            load_size = round(image_size * JITTER_RATIO)
        if load_size < image_size:
            raise ValueError(f"load_size ({load_size}) must be >= image_size ({image_size})")
        self.load_size = load_size
        self.flip = flip and self.train
        self.direction = direction
        self.augment = augment
        self.cache = cache
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        budget_gb = float(os.environ.get("PIX2PIX_CACHE_GB", DEFAULT_CACHE_GB))
        self._cache_budget = int(budget_gb * 2**30)
        self._cache_bytes = 0
        self.cache_full = False  # set once a pair did not fit in the budget
        # Random part of the jitter. The resize is deterministic and happens before caching.
        steps = []
        if self.load_size > image_size:
            steps.append(v2.RandomCrop(image_size))
        if self.flip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
        self._jitter = v2.Compose(steps) if steps else None
        self._resize = v2.Resize((self.load_size, self.load_size), antialias=True)

    def __len__(self) -> int:
        return len(self.files)

    def check_files(self, *, skip_bad: bool = False) -> None:
        """Check every file's header and size now (`check_pair_files`); skip_bad leaves bad ones out."""
        self.files = check_pair_files(self.files, skip_bad=skip_bad, where=self.root / self.split)
        self._cache.clear()
        self._cache_bytes = 0

    def fill_cache(self, *, progress: bool = True) -> None:
        """Decode every pair now (until the cache budget is full): DataLoader workers forked later share it."""
        if not self.cache:
            return
        for i in tqdm(range(len(self)), desc="caching pairs", disable=not progress, leave=False):
            self.load_pair(i)
            if self.cache_full:  # the rest would be decoded only to be thrown away
                break

    def fingerprint(self) -> str:
        """Which files this split reads (`files_fingerprint`)."""
        return files_fingerprint(self.files, self.root)

    def __repr__(self) -> str:
        return (f"PairedImageDataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"image_size={self.image_size}, load_size={self.load_size}, flip={self.flip}, "
                f"direction={self.direction!r}, augment={'yes' if self.augment else 'no'})")

    def load_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded A and B of one file as uint8 (3, L, L) tensors at load_size (cached)."""
        if index in self._cache:
            return self._cache[index]
        path = self.files[index]
        a, b = split_pair_array(load_rgb(path), path=path)  # (H, H, 3) each
        a = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1))  # (3, H, H)
        b = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(b)).permute(2, 0, 1))
        if a.shape[-1] != self.load_size:
            a, b = self._resize(a, b)  # one call: both halves get the same resize
        pair = (a.as_subclass(torch.Tensor).contiguous(), b.as_subclass(torch.Tensor).contiguous())
        if self.cache:
            nbytes = pair[0].numel() * 2
            if self._cache_bytes + nbytes <= self._cache_budget:
                self._cache[index] = pair
                self._cache_bytes += nbytes
            elif not self.cache_full:
                self.cache_full = True
                warnings.warn(f"{self.root / self.split}: the in-memory cache is full "
                              f"({self._cache_budget / 2**30:.1f} GB, PIX2PIX_CACHE_GB); the rest "
                              "is decoded every epoch", stacklevel=2)
        return pair

    def __getitem__(self, index: int) -> dict:
        a, b = self.load_pair(index)  # uint8 (3, L, L)
        if self._jitter is not None:
            # Same crop window and same flip for both: they are passed in one call.
            a, b = self._jitter(tv_tensors.Image(a), tv_tensors.Image(b))
            a, b = a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor)
        if self.augment is not None:
            seed = int(torch.randint(0, 2**62, ()).item())  # follows torch's (per-worker) seed
            a, b = self.augment(a, b, torch.Generator().manual_seed(seed))
        if self.direction == "BtoA":
            a, b = b, a
        return {
            "A": normalize_to_neg_one_to_one(a.float() / 255.0),  # (3, S, S) in [-1, 1]
            "B": normalize_to_neg_one_to_one(b.float() / 255.0),
            "path": str(self.files[index]),
        }
