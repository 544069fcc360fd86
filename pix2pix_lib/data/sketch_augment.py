"""Make training sketches look hand-drawn, and make the hand-drawn test set .

OpenMoji line art is drawn by a vector program: strokes of one width, perfectly smooth, never
broken. A person's doodle is none of that, and a generator trained only on clean line art colours
doodles badly. Two kinds of change close the gap:

- geometric (shift, scale, rotation, a smooth "elastic" wobble): applied to A *and* B with the
  same warp. Measured with a throwaway model: wobble on A alone misaligned the sketch from its
  target, and the generator got worse than the copy-the-sketch baseline - it learned to blur.
- appearance (stroke width jitter, broken/dropped segments, stroke intensity): A only. B does not
  depend on how wide or faint a line was drawn, so the model learns to ignore those.

Everything works on uint8 (3, H, W) tensors (the dataset's `augment` hook runs after the crop and
flip, before normalisation) and draws its randomness from the torch.Generator it is given, so a
seed reproduces a sample exactly. The stroke tools live in `strokes.py`, shared with the doodle
preprocessing in `generate.py`.
Sketches are assumed dark strokes on a light background (the line-art convention here).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import torch

from ..files import atomic_output_dir
from ..strokes import STROKE_WIDTH_AT_256, disk, skeletonize
from .paired import list_pair_files, load_rgb, make_pair_image, split_pair_array

VARIANT_KINDS = ("thicker", "thinner", "shaky", "incomplete")


# ----------------------------------------------------------------------------- helpers
def _rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator drawn from the torch one: OpenCV and NumPy do the pixel work."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator).item()))


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    if x.dtype != torch.uint8 or x.ndim != 3:
        raise ValueError(f"expected a uint8 (C, H, W) tensor, got {x.dtype} {tuple(x.shape)}")
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())  # (H, W, C)


def _to_chw(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous().to(like.dtype)


def _smooth_field(rng: np.random.Generator, size: int, cells: int, amplitude: float) -> np.ndarray:
    """A smooth random displacement (H, W) in px: a coarse grid of N(0, 1) upsampled bicubically."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) * amplitude


def warp_maps(rng: np.random.Generator, size: int, *, shift: float, scale: tuple[float, float],
              rotate: float, wobble: float, wobble_cells: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (H, W) float32 for a random affine (about the centre) plus elastic wobble.

    shift: max translation as a fraction of the size; rotate: max degrees; wobble: amplitude of
    the displacement in px; wobble_cells: how many bends across the image (more = shakier).
    """
    c = (size - 1) / 2
    s = rng.uniform(*scale)
    angle = np.deg2rad(rng.uniform(-rotate, rotate))
    tx, ty = rng.uniform(-shift, shift, 2) * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    # inverse map: output pixel -> source pixel (remap samples the source)
    u, v = (xs - c - tx) / s, (ys - c - ty) / s
    cos, sin = np.cos(angle), np.sin(angle)
    map_x = cos * u + sin * v + c
    map_y = -sin * u + cos * v + c
    if wobble > 0:
        map_x += _smooth_field(rng, size, wobble_cells, wobble)
        map_y += _smooth_field(rng, size, wobble_cells, wobble)
    return map_x.astype(np.float32), map_y.astype(np.float32)


def _remap(img: np.ndarray, maps) -> np.ndarray:
    # Replicate the border: the backgrounds here are plain, and no black frame appears.
    out = cv2.remap(img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def change_width(img: np.ndarray, delta: float) -> np.ndarray:
    """Widen (delta > 0) or narrow (delta < 0) dark strokes by ~|delta| px.

    Works at twice the resolution so that half-pixel changes exist: a min filter spreads the
    dark strokes, a max filter eats into them.
    """
    h, w = img.shape[:2]
    k = int(round(2 * abs(delta)))
    if k == 0:
        return img
    big = cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    big = (cv2.erode if delta > 0 else cv2.dilate)(big, disk(k + 1))
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).reshape(img.shape)


def break_strokes(img: np.ndarray, rng: np.random.Generator, *, n: int, length: float) -> np.ndarray:
    """Erase `n` short pieces (about `length` px long) of the strokes, centred on random ink pixels."""
    gray = img if img.ndim == 2 else img.mean(axis=2)
    ys, xs = np.nonzero(gray < 128)
    out = img.copy()
    if len(ys) == 0:
        return out
    white = (255,) * (1 if img.ndim == 2 else img.shape[2])
    for i in rng.integers(0, len(ys), n):
        radius = max(1, int(round(length * rng.uniform(0.6, 1.4) / 2)))
        cv2.circle(out, (int(xs[i]), int(ys[i])), radius, white, thickness=-1)
    return out


def fade_strokes(img: np.ndarray, strength: float) -> np.ndarray:
    """Lighten the ink: 1.0 keeps it, 0.6 turns black strokes into 40% grey."""
    return (255 - (255 - img.astype(np.float32)) * strength).round().clip(0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- training
class DoodleAugment:
    """Hand-drawn-looking training sketches: the dataset's `augment` hook for "doodle" training.

    Call it as `augment(A, B, generator) -> (A, B)` with uint8 (3, H, W) tensors.

    Parameters:
        p_geometric:  chance of a shared warp of A and B (shift, scale, rotation, wobble). The
                      same warp for both: wobbling A alone misaligned it from B and the model did
                      worse than copying the sketch (measured with a throwaway model).
        shift:        max translation, fraction of the image side (doodles are never centred)
        scale:        (min, max) zoom (doodles fill the canvas more or less)
        rotate:       max rotation in degrees (a doodle is rarely drawn straight)
        wobble:       elastic displacement amplitude as a fraction of the side (shaky hands;
                      0.01 = 2.6 px at 256, enough to bend a line without tearing it)
        p_width:      chance of stroke width jitter on A; preprocessing normalises width only
                      approximately, so the model should tolerate the rest
        width_range:  (min, max) width change as a fraction of the training stroke width
        p_break:      chance of erasing 1..max_breaks short pieces of A's strokes (gaps left
                      by a quick hand; a model that needs closed outlines floods through them)
        max_breaks:   the most pieces erased
        break_length: piece length as a multiple of the stroke width
        p_fade:       chance of lighter strokes on A (pencil, a soft pen)
        fade_range:   (min, max) ink strength kept
    """

    def __init__(self, *, p_geometric: float = 0.8, shift: float = 0.06,
                 scale: tuple[float, float] = (0.85, 1.1), rotate: float = 8.0,
                 wobble: float = 0.01, p_width: float = 0.7,
                 width_range: tuple[float, float] = (-0.5, 0.8), p_break: float = 0.5,
                 max_breaks: int = 4, break_length: float = 2.5, p_fade: float = 0.3,
                 fade_range: tuple[float, float] = (0.6, 1.0)):
        self.p_geometric, self.shift, self.scale, self.rotate, self.wobble = p_geometric, shift, scale, rotate, wobble
        self.p_width, self.width_range = p_width, width_range
        self.p_break, self.max_breaks, self.break_length = p_break, max_breaks, break_length
        self.p_fade, self.fade_range = p_fade, fade_range

    def __repr__(self) -> str:
        return (f"DoodleAugment(p_geometric={self.p_geometric}, shift={self.shift}, scale={self.scale}, "
                f"rotate={self.rotate}, wobble={self.wobble}, p_width={self.p_width}, "
                f"p_break={self.p_break}, p_fade={self.p_fade})")

    def geometric(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator):
        """The same warp for A and B (H, W, C) arrays."""
        maps = warp_maps(rng, a.shape[0], shift=self.shift, scale=self.scale, rotate=self.rotate,
                         wobble=self.wobble * a.shape[0])
        return _remap(a, maps), _remap(b, maps)

    def appearance(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stroke width, breaks and intensity: A (H, W, C) only."""
        line = STROKE_WIDTH_AT_256 * a.shape[0] / 256  # stroke width at this size
        if rng.random() < self.p_width:
            a = change_width(a, rng.uniform(*self.width_range) * line)
        if rng.random() < self.p_break:
            a = break_strokes(a, rng, n=int(rng.integers(1, self.max_breaks + 1)),
                              length=self.break_length * line)
        if rng.random() < self.p_fade:
            a = fade_strokes(a, rng.uniform(*self.fade_range))
        return a

    def __call__(self, a: torch.Tensor, b: torch.Tensor, generator: torch.Generator):
        if a.shape[-2:] != b.shape[-2:] or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"A and B must be square and the same size, got {tuple(a.shape)}, {tuple(b.shape)}")
        rng = _rng(generator)
        a_np, b_np = _to_hwc(a), _to_hwc(b)  # (H, W, C) uint8
        if rng.random() < self.p_geometric:
            a_np, b_np = self.geometric(a_np, b_np, rng)
            b = _to_chw(b_np, b)
        a_np = self.appearance(a_np, rng)
        return _to_chw(a_np, a), b


# ----------------------------------------------------------------------------- robustness test set
def perturb_sketch(a: torch.Tensor, kind: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A validation sketch drawn "differently" (uint8 (3, H, W) -> same), for robustness numbers.

    kinds (the target B stays as it was: the question is whether the model still paints it):
        "thicker":    strokes twice the training width
        "thinner":    1-px strokes (the skeleton), like a thin pen on a big canvas
        "shaky":      a high-frequency wobble of the strokes alone (a trembling hand), ~0.8% of the side
        "incomplete": 3 gaps of ~8% of the side erased from the outlines
    """
    if kind not in VARIANT_KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {VARIANT_KINDS}")
    rng = _rng(generator if generator is not None else torch.Generator().manual_seed(0))
    img = _to_hwc(a)
    size = img.shape[0]
    line = STROKE_WIDTH_AT_256 * size / 256
    if kind == "thicker":
        out = change_width(img, line)
    elif kind == "thinner":
        ink = skeletonize(img.mean(axis=2) < 128)
        out = np.where(ink[:, :, None], 0, 255).astype(np.uint8).repeat(img.shape[2], axis=2)
    elif kind == "shaky":
        maps = warp_maps(rng, size, shift=0, scale=(1, 1), rotate=0, wobble=0.008 * size, wobble_cells=10)
        out = _remap(img, maps)
    else:
        out = break_strokes(img, rng, n=3, length=0.08 * size)
    return _to_chw(out, a)


def make_doodle_variants(a: torch.Tensor, *, seed: int = 0,
                         kinds: tuple[str, ...] = VARIANT_KINDS) -> dict[str, torch.Tensor]:
    """All `perturb_sketch` variants of one sketch: {kind: uint8 (3, H, W)}; repeatable by seed."""
    return {kind: perturb_sketch(a, kind, generator=torch.Generator().manual_seed(seed + i))
            for i, kind in enumerate(kinds)}


def write_robustness_sets(val_dir: str | Path, out_root: str | Path, *, seed: int = 0,
                          kinds: tuple[str, ...] = VARIANT_KINDS, limit: int | None = None) -> dict[str, Path]:
    """Write `<out_root>/<kind>/val/*.png` A|B pair folders from a validation folder of pairs.

    A is perturbed, B is copied; every folder is a dataset `PairedImageDataset` (split "val") and
    the evaluation code read as is. Returns {kind: dataset root}. The folders appear all at once
    when every pair is written (an interrupted run leaves none, and replaces no earlier set).
    """
    files = list_pair_files(val_dir)[:limit]
    roots = {kind: Path(out_root) / kind for kind in kinds}
    with contextlib.ExitStack() as stack:
        staging = {kind: stack.enter_context(atomic_output_dir(root, kind=f"robustness set ({kind})", inputs=(val_dir,),
                                                               flag="out_root")) / "val"
                   for kind, root in roots.items()}
        for folder in staging.values():
            folder.mkdir()
        for i, path in enumerate(files):
            a, b = split_pair_array(load_rgb(path), path=path)
            a_t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
            for kind, variant in make_doodle_variants(a_t, seed=seed + 1000 * i, kinds=kinds).items():
                pair = make_pair_image(variant.permute(1, 2, 0).numpy(), b)
                pair.save(staging[kind] / f"{path.stem}.png")
    return roots
