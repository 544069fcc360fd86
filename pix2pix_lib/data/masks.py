"""Object masks for photos that come without them: an object on a plain studio background.

Carvana's test photos (and a user's own photos of an object in front of a plain wall) have no
masks. The backdrop is plain and neutral (a white wall, grey lettering, a grey floor); the object
is not: it has saturated paint or lights, and dark parts (tyres, windows, shadows inside it) that
the wall and floor never have. So, per photo, at a small working size:

1. **seeds**: saturated or very dark pixels (relative to the wall's brightness), small specks
   dropped - certainly the object;
2. **box**: the seeds' extent plus margins (more above: a roof is often as pale as the wall); all
   outside it is certainly background, so the wall's lettering above the object and the floor
   around it teach GrabCut what the background looks like;
3. **the studio from the other views** (`backdrop_of`, five views or more): the camera and the
   studio stay while the turntable turns the car, so the per-pixel median of one car's views is
   the studio wherever the car moves away; a view's pixels that match it (the lettering behind a
   roof) are background for sure, which lets the box reach up for the roof (22 % instead of 10 %);
4. **GrabCut** (colour models + edges) decides the rest of the box;
5. **clean-up**: the largest part, small gaps closed, holes filled;
6. **quality check** (`mask_quality`): a mask that is too small or large, ragged, lost seeds, or
   fills too little of its box is dropped, with the reason, instead of teaching a model a
   half-car. `object_masks` also compares the views of one object with each other.

What it cannot do: a white or silver object on a white wall loses the parts that touch the wall
(a white car's roof); the checks drop most of these, so such cars are under-represented in the
pairs. Shadows right under the object stay. On carvana-90: 1,440 photos, about a third dropped.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 256  # GrabCut runs at this longer side: fast, and the mask is upscaled smoothly
_DISK = lambda d: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))  # noqa: E731


def _working_copy(image: np.ndarray) -> tuple[np.ndarray, float]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = cv2.resize(np.ascontiguousarray(image[:, :, :3]), (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return small, scale


def object_seeds(small: np.ndarray) -> np.ndarray:
    """Pixels that are surely the object: saturated colour, or much darker than the wall. (H, W) bool."""
    h, w = small.shape[:2]
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    sat, val = hsv[:, :, 1].astype(np.int32), hsv[:, :, 2].astype(np.int32)
    wall = float(np.median(val[: max(1, h // 20)]))  # the top rows: the brightest, emptiest part
    seeds = ((sat > 70) & (val > 40)) | (val < 0.25 * wall)
    zone = np.zeros_like(seeds)  # not the very top (lettering, lights) nor the frame's edges
    zone[int(0.12 * h): int(0.96 * h), int(0.02 * w): int(0.98 * w)] = True
    seeds = cv2.morphologyEx((seeds & zone).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(seeds, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= max(4, seeds.size // 2000)  # specks: dirt, reflections
    keep[0] = False
    return keep[labels]


def seed_box(seeds: np.ndarray, *, top_margin: float = 0.10) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the seeds' robust extent plus margins, or None without enough seeds.

    `top_margin` (share of the height) is room for a roof paler than any seed."""
    h, w = seeds.shape
    ys, xs = np.nonzero(seeds)
    if len(ys) < max(20, seeds.size // 1000):
        return None
    top, bottom = np.percentile(ys, [0.5, 99.8])  # percentiles: one stray seed does not stretch it
    left, right = np.percentile(xs, [0.3, 99.7])
    return (int(max(0, left - 0.04 * w)), int(max(0, top - top_margin * h)),
            int(min(w, right + 0.04 * w + 1)), int(min(h, bottom + 0.02 * h + 1)))


def _largest_filled(fg: np.ndarray) -> np.ndarray:
    """The largest 8-connected part, gaps closed and holes filled. uint8 0/1."""
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, _DISK(3))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros_like(fg)
    fg = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _DISK(7))
    outside = np.pad(fg, 1).copy()  # flood the background from the frame: what it cannot reach is a hole
    cv2.floodFill(outside, None, (0, 0), 1)
    return fg | (1 - outside[1:-1, 1:-1])


def mask_quality(mask: np.ndarray, seeds: np.ndarray, box: tuple[int, int, int, int]) -> str | None:
    """Why a (working-size) mask is unusable, or None when it passes. All shares are of pixels."""
    h, w = mask.shape
    area = int(mask.sum())
    if not 0.02 * h * w <= area <= 0.65 * h * w:
        return f"object covers {area / (h * w):.0%} of the photo (expected 2-65 %)"
    if mask[0].any() or mask[:, 0].mean() > 0.1 or mask[:, -1].mean() > 0.1:
        return "mask runs into the top or along a side of the photo"
    if seeds.any() and (mask & seeds).sum() < 0.9 * seeds.sum():
        return f"mask keeps only {(mask & seeds).sum() / seeds.sum():.0%} of the sure object pixels"
    x0, y0, x1, y1 = box
    fill = area / max(1, (x1 - x0) * (y1 - y0))
    if fill < 0.45:
        return f"mask fills {fill:.0%} of the object's box (parts lost to the background)"
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.contourArea(cv2.convexHull(np.vstack(contours)))
    if area < 0.75 * hull:
        return f"ragged mask (solidity {area / max(hull, 1):.2f} < 0.75)"
    return None


def backdrop_of(views: list[np.ndarray], *, tolerance: int = 14,
                agree: float = 0.7) -> tuple[np.ndarray, np.ndarray] | None:
    """The studio without the object, from one object's views: (median colour, steady) at working size.

    The camera and the studio stay put while the turntable turns the car, so a pixel of the wall,
    its lettering or the floor shows the same colour in most views, and the car, turning, mostly
    does not: `steady` marks the pixels where at least `agree` of the views match the median. None
    when the views differ in size or are too few to out-vote the car.
    """
    if len(views) < 5 or len({v.shape for v in views}) != 1:
        return None
    stack = np.stack([_working_copy(v)[0] for v in views]).astype(np.int16)   # (V, H, W, 3)
    median = np.median(stack, axis=0)
    matching = (np.abs(stack - median).max(axis=3) < tolerance).mean(axis=0)    # (H, W) share of views
    return median.astype(np.uint8), matching >= agree


def static_studio(small: np.ndarray, backdrop: tuple[np.ndarray, np.ndarray], *, tolerance: int = 14) -> np.ndarray:
    """Pixels of a view that show the steady, neutral studio (wall, letters, floor). (H, W) bool."""
    median, steady = backdrop
    same = np.abs(small.astype(np.int16) - median.astype(np.int16)).max(axis=2) < tolerance
    neutral = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[:, :, 1] < 40
    return same & steady & neutral


def auto_mask(image: np.ndarray, *, backdrop: tuple[np.ndarray, np.ndarray] | None = None,
              iterations: int = 4) -> tuple[np.ndarray | None, str | None]:
    """One photo -> (mask (H, W) bool at the photo's size, None) or (None, why it failed).

    With `backdrop` (`backdrop_of` the object's views) the studio's static pixels - the lettering
    behind a roof, the floor - are background for sure, which leaves room above the seeds for a
    roof: without one, a tall box would let the grey letters into the mask.
    """
    small, scale = _working_copy(image)
    seeds = object_seeds(small)
    box = seed_box(seeds, top_margin=0.10 if backdrop is None else 0.22)
    if box is None:
        return None, "no object found (nothing saturated or dark on the plain background)"
    x0, y0, x1, y1 = box
    labels = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
    labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if backdrop is not None and backdrop[0].shape == small.shape:
        labels[static_studio(small, backdrop)] = cv2.GC_BGD
    labels[seeds] = cv2.GC_FGD
    models = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(small, labels, None, *models, iterations, cv2.GC_INIT_WITH_MASK)
    mask = _largest_filled((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    problem = mask_quality(mask.astype(bool), seeds, seed_box(seeds))  # the fill is judged on the usual box
    if problem:
        return None, problem
    h, w = np.asarray(image).shape[:2]
    full = mask if scale == 1.0 else cv2.resize(mask * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 127
    return full.astype(bool), None


def object_masks(views: dict[str, np.ndarray], *, area_range: tuple[float, float] = (0.4, 2.5),
                 min_height: float = 0.8) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Masks for the views of one object (a car's 16 photos), checked against each other.

    Parameters:
        views: name -> RGB photo, all of the same object.
        area_range: a view whose mask area is outside this range times the median area of the
            object's views lost or gained a large part (a car is never 3x bigger from one side).
        min_height: a view less tall than this share of its object's tall views (75th percentile)
            lost its top: a pale roof taken for the pale wall. A car's height hardly changes as
            the turntable turns it.

    Returns ({name: mask}, {name: why it was dropped}).
    """
    masks, dropped = {}, {}
    backdrop = backdrop_of(list(views.values()))
    for name, image in views.items():
        mask, problem = auto_mask(image, backdrop=backdrop)
        if problem:
            dropped[name] = problem
        else:
            masks[name] = mask
    if len(masks) < 3:  # fewer views cannot tell which one is odd
        return masks, dropped
    median_area = float(np.median([m.mean() for m in masks.values()]))
    heights = {name: _height(m) for name, m in masks.items()}
    full_height = float(np.percentile(list(heights.values()), 75))
    for name in list(masks):
        ratio = masks[name].mean() / median_area
        if not area_range[0] <= ratio <= area_range[1]:
            dropped[name] = f"mask area {ratio:.1f}x the median of the object's views"
        elif heights[name] < min_height * full_height:
            dropped[name] = (f"mask {heights[name] / full_height:.0%} as tall as the object's other views "
                             "(top lost to the background)")
        else:
            continue
        del masks[name]
    return masks, dropped


def _height(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0
