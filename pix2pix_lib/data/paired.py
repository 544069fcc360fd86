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
import math
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

from ..files import shown
from ..imaging import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, normalize_to_neg_one_to_one, open_rgb

JITTER_RATIO = 286 / 256  # the paper's load size relative to the crop size
# Decoded pairs kept in memory beyond this many bytes are decoded again each epoch
# (edges2shoes at 286 px would need ~24 GB). Override with PIX2PIX_CACHE_GB.
DEFAULT_CACHE_GB = 4.0
# No pair file is larger than this: an uncompressed 16-bit RGBA picture of MAX_IMAGE_PIXELS.
MAX_PAIR_FILE_BYTES = 8 * MAX_IMAGE_PIXELS

Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------------------------
# Reading and writing pair images


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file (of our formats) as an 8-bit RGB array (H, W, 3), upright: `imaging.open_rgb`.

    Errors name the file: missing, of another format, damaged anywhere, too large.
    """
    return open_rgb(path)


def split_pair_array(array: np.ndarray, *, path: str | Path = "<array>") -> tuple[np.ndarray, np.ndarray]:
    """(H, 2H, 3) -> A (H, H, 3), B (H, H, 3). The width must be exactly twice the height."""
    h, w = array.shape[:2]
    if w != 2 * h:
        raise ValueError(f"{shown(path)}: a pair image must be twice as wide as tall (A left, B right), "
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
        raise FileNotFoundError(f"{shown(folder)}: no such folder (expected <root>/<split>/ with A|B images)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{shown(folder)}: contains no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def read_pair(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """A and B (H, H, 3) of one pair file, decoded whole from one read of its bytes, and their digest.

    The bytes that are checked are the bytes decoded (and hashed): the file is read once. Errors
    name the file: not one of our image formats, damaged anywhere, too large, not twice as wide.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_PAIR_FILE_BYTES:
                raise ValueError(f"{shown(path)}: over {MAX_PAIR_FILE_BYTES / 2**20:.0f} MB, larger than any pair "
                                 "image this reads")
            data = f.read()
    except OSError as err:
        raise OSError(f"{shown(path)}: cannot read it ({err.strerror or err})") from None
    if not data:
        raise ValueError(f"{shown(path)}: empty file")
    a, b = split_pair_array(open_rgb(data, name=str(path)), path=path)
    return a, b, content_digest(data)


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pair_file_problem(path: str | Path) -> str | None:
    """What is wrong with one pair file (decoded whole by `read_pair`), or None.

    Catches what would stop a run half-way: an empty, truncated or damaged file (a PNG corrupted in
    the middle too), another format (PostScript named .png: never handed to Ghostscript), a
    decompression bomb, a picture that is not twice as wide as tall.
    """
    try:
        read_pair(path)
    except (OSError, ValueError) as err:
        return _problem(path, err)
    return None


def _problem(path: str | Path, err: Exception) -> str:
    return str(err).removeprefix(f"{shown(path)}: ") or type(err).__name__


def check_pair_files(files: list[Path], *, skip_bad: bool = False, where: str | Path = "",
                     keep: Callable[[int, Path, np.ndarray, np.ndarray, str], None] | None = None) -> list[Path]:
    """The usable files of `files`, each decoded whole once; with skip_bad=False a bad one raises ValueError.

    Run before training starts: one damaged file among thousands must not stop a run at step 62.
    `keep(index among the good files, path, A, B, digest)` is called for each good file, so that a
    cache can keep what was decoded here instead of decoding it again.
    """
    good, problems = [], []
    for path in tqdm(files, desc="checking pairs", delay=2.0, leave=False):  # a bar only when it takes a while
        try:
            a, b, digest = read_pair(path)
        except (OSError, ValueError) as err:
            problems.append((path, _problem(path, err)))
            continue
        good.append(path)
        if keep is not None:
            keep(len(good) - 1, path, a, b, digest)
    if not problems:
        return good
    listed = "; ".join(f"{shown(path)}: {problem}" for path, problem in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    if not skip_bad:
        raise ValueError(f"{len(problems)} of {len(files)} files in {shown(where)} cannot be used: {listed}{more}. "
                         "Fix or remove them, or pass --skip-bad to train without them")
    warnings.warn(f"left out {len(problems)} of {len(files)} bad files in {shown(where)}: {listed}{more}", stacklevel=2)
    if not good:
        raise ValueError(f"{shown(where)}: none of its {len(files)} files can be used: {listed}{more}")
    return good


def files_fingerprint(files: list[Path], root: str | Path, digests: dict[Path, str] | None = None, *,
                      content: bool = True) -> str:
    """A hash of the files' names (relative to `root`), sizes and contents: which data a run trained on.

    Unchanged when the dataset folder is moved or renamed; changed by any changed byte, also when
    names and sizes stay (same-size BMPs, uncompressed TIFFs). `digests` (path -> `content_digest`,
    from `check_pair_files`) saves reading the files again. content=False: names and sizes alone,
    what checkpoints stored before contents were hashed (so such a run still resumes on its data).
    """
    digests = digests or {}
    digest = hashlib.sha256()
    for path in files:
        line = f"{Path(path).relative_to(root).as_posix()}\t{Path(path).stat().st_size}"
        if content:
            line += f"\t{digests.get(path) or content_digest(Path(path).read_bytes())}"
        digest.update(f"{line}\n".encode())
    return digest.hexdigest()[:16]


def cache_budget_bytes() -> int:
    """The decoded-pairs cache's size from PIX2PIX_CACHE_GB (default DEFAULT_CACHE_GB), or ValueError."""
    text = os.environ.get("PIX2PIX_CACHE_GB", "").strip()
    try:
        gb = float(text) if text else DEFAULT_CACHE_GB
    except ValueError:
        gb = math.nan
    if not (math.isfinite(gb) and gb >= 0):
        raise ValueError(f"PIX2PIX_CACHE_GB={shown(text)}: must be a finite number >= 0, the GB of memory for "
                         "decoded training pairs (e.g. 4; 0 turns the cache off)")
    return int(gb * 2**30)


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
                                persistent_workers=True. `check_files` fills it as it checks.

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
        self._cache_budget, self._cache_bytes = cache_budget_bytes(), 0
        self._digests: dict[Path, str] = {}  # path -> content digest, from check_files' reading
        self.skip_bad = False  # set by check_files: a file that fails later is skipped too
        self._skipped: set[Path] = set()
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
        """Decode every file now (`check_pair_files`), filling the cache: skip_bad leaves bad ones out.

        What is decoded here is kept (within the cache's budget) and hashed for `fingerprint`, so
        no file is read twice to start a run.
        """
        self._cache.clear()
        self._cache_bytes, self.cache_full, self._digests = 0, False, {}

        def keep(index: int, path: Path, a: np.ndarray, b: np.ndarray, digest: str) -> None:
            self._digests[path] = digest
            if self.cache and not self.cache_full:
                self._store(index, self._to_tensors(a, b))

        self.files = check_pair_files(self.files, skip_bad=skip_bad, where=self.root / self.split, keep=keep)
        self.skip_bad = skip_bad

    def fill_cache(self, *, progress: bool = True) -> None:
        """Decode every pair now (until the cache budget is full): DataLoader workers forked later share it."""
        if not self.cache:
            return
        for i in tqdm(range(len(self)), desc="caching pairs", disable=not progress, leave=False):
            self.load_pair(i)
            if self.cache_full:  # the rest would be decoded only to be thrown away
                break

    def fingerprint(self, *, content: bool = True) -> str:
        """Which files this split reads, their contents included (`files_fingerprint`)."""
        return files_fingerprint(self.files, self.root, self._digests, content=content)

    def __repr__(self) -> str:
        return (f"PairedImageDataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"image_size={self.image_size}, load_size={self.load_size}, flip={self.flip}, "
                f"direction={self.direction!r}, augment={'yes' if self.augment else 'no'})")

    def load_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded A and B of one file as uint8 (3, L, L) tensors at load_size (cached)."""
        if index in self._cache:
            return self._cache[index]
        path = self.files[index]
        pair = self._to_tensors(*split_pair_array(load_rgb(path), path=path))
        if self.cache:
            self._store(index, pair)
        return pair

    def _to_tensors(self, a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """A and B (H, H, 3) arrays -> uint8 (3, L, L) tensors at load_size."""
        # Channels first in NumPy: a strided resize output's .contiguous() took ~14 ms a pair on a busy CPU.
        a, b = (tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))) for x in (a, b))
        if a.shape[-1] != self.load_size:
            a, b = self._resize(a, b)  # one call: both halves get the same resize
        return a.as_subclass(torch.Tensor).contiguous(), b.as_subclass(torch.Tensor).contiguous()

    def _store(self, index: int, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
        nbytes = pair[0].numel() * 2
        if self._cache_bytes + nbytes <= self._cache_budget:
            self._cache[index] = pair
            self._cache_bytes += nbytes
        elif not self.cache_full:
            self.cache_full = True
            warnings.warn(f"{shown(self.root / self.split)}: the in-memory cache is full "
                          f"({self._cache_budget / 2**30:.1f} GB, PIX2PIX_CACHE_GB); the rest "
                          "is decoded every epoch", stacklevel=3)

    def _readable_pair(self, index: int) -> tuple[int, tuple[torch.Tensor, torch.Tensor]]:
        """(index, pair) of `index`, or under skip_bad of the next readable file (each bad one said once)."""
        for i in [*range(index, len(self)), *range(index)]:
            try:
                return i, self.load_pair(i)
            except (OSError, ValueError) as err:  # changed since check_files: damaged, replaced, gone
                if not self.skip_bad:
                    raise ValueError(f"{err} (fix or remove it; train --skip-bad leaves such files out)") from None
                if self.files[i] not in self._skipped:
                    self._skipped.add(self.files[i])
                    warnings.warn(f"skipped {shown(self.files[i])}: {_problem(self.files[i], err)}", stacklevel=3)
        raise ValueError(f"{shown(self.root / self.split)}: none of its {len(self)} files can be read any more")

    def __getitem__(self, index: int) -> dict:
        index, (a, b) = self._readable_pair(index)  # uint8 (3, L, L)
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
