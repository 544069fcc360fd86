"""Edge images: the "sketch" half of a pair made from a photo.

The pix2pix paper built edges2shoes/edges2handbags with HED edges plus post-processing; the
seed project used OpenCV's Canny. Two styles here, both returning black strokes on white:

- `canny_edges`: Canny with thresholds chosen from the image's own median brightness (the
  "auto Canny" rule: lower = (1 - sigma) * median, upper = (1 + sigma) * median), so one setting
  works on dark and bright photos. Thin, and it doubles every contour (both sides of a line).
- `sketch_edges`: towards what a person draws - smooth textures away first (bilateral filter),
  draw each thin dark line once (its centre line) instead of its two sides, drop the tiny
  fragments, then thicken: fewer, thicker, connected strokes.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..strokes import skeletonize


def _to_gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")


def _finish(edges: np.ndarray, rgb: bool) -> np.ndarray:
    """Canny output (white edges on black) -> black strokes on white, (H, W) or (H, W, 3)."""
    strokes = 255 - edges
    return np.repeat(strokes[:, :, None], 3, axis=2) if rgb else strokes


def auto_canny_thresholds(gray: np.ndarray, *, sigma: float = 0.33,
                          mask: np.ndarray | None = None) -> tuple[float, float]:
    """Canny thresholds from the median of the pixels (of the masked object when a mask is given).

    A white background would pull the median to 255, so pass the object mask when there is one.
    """
    values = gray[mask > 0] if mask is not None and np.any(mask) else gray
    median = float(np.median(values))
    lower = max(0.0, (1.0 - sigma) * median)
    upper = min(255.0, (1.0 + sigma) * median)
    # A black object (median ~0) would make every flicker an edge: keep a small floor.
    return max(lower, 5.0), max(upper, 10.0)


def canny_edges(image: np.ndarray, *, sigma: float = 0.33, blur: int = 3,
                mask: np.ndarray | None = None, rgb: bool = False) -> np.ndarray:
    """Canny edges with automatic thresholds, black strokes on white.

    Parameters:
        image (uint8 array)  -- (H, W, 3) RGB or (H, W) gray.
        sigma (float)        -- width of the threshold band around the median (0.33: the usual rule).
        blur (int)           -- Gaussian blur kernel before Canny (odd; 0 or 1: none).
        mask (array)         -- optional object mask (H, W); thresholds then come from the object.
        rgb (bool)           -- return (H, W, 3) instead of (H, W).

    Returns a uint8 array: 255 = paper, 0 = stroke.
    """
    gray = _to_gray(image)
    if blur and blur > 1:
        gray = cv2.GaussianBlur(gray, (blur | 1, blur | 1), 0)
    lower, upper = auto_canny_thresholds(gray, sigma=sigma, mask=mask)
    return _finish(cv2.Canny(gray, lower, upper, L2gradient=True), rgb)


def remove_small_components(edges: np.ndarray, *, min_size: int) -> np.ndarray:
    """Keep only 8-connected groups of edge pixels (value > 0) with at least `min_size` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((edges > 0).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_size  # label 0 is the background
    return np.where(keep[labels], 255, 0).astype(np.uint8)


def sketch_edges(image: np.ndarray, *, sigma: float = 0.33, smooth: int | None = None,
                 line_width: int | None = None, line_contrast: float = 40.0,
                 min_size: int | None = None, thickness: int | None = None,
                 mask: np.ndarray | None = None, rgb: bool = False) -> np.ndarray:
    """Simplified edges that look more like a drawing: fewer, thicker, connected strokes.

    Canny draws both sides of every dark line (an outline, a window frame, a tyre's rim); a
    person draws one stroke. So: flatten texture (bilateral filter); find the thin dark lines
    (black-hat transform: darker than what a closing with a `line_width` disk fills in) and replace
    the Canny edges on their two sides by the lines themselves; reduce everything to centre lines
    (thinning); drop short fragments; thicken to a pen width.

    Parameters:
        image (uint8 array)    -- (H, W, 3) RGB or (H, W) gray.
        sigma (float)          -- Canny threshold band around the median (see `canny_edges`).
        smooth (int)           -- bilateral filter diameter; flattens texture, keeps outlines.
                                  None: scales with the image (9 at 256 px).
        line_width (int)       -- dark lines thinner than this (pixels) become one stroke.
                                  None: ~size/18 (14 at 256).
        line_contrast (float)  -- how much darker than its surroundings a line must be (0-255).
        min_size (int)         -- centre-line fragments with fewer pixels are dropped. None: ~size/16.
        thickness (int)        -- stroke width of the result. None: ~size/85 (3 px at 256).
        mask (array)           -- optional object mask (H, W) for the thresholds.
        rgb (bool)             -- return (H, W, 3) instead of (H, W).
    """
    gray_in = _to_gray(image)
    side = min(gray_in.shape)
    smooth = smooth if smooth is not None else max(3, round(9 * side / 256)) | 1
    line_width = line_width if line_width is not None else max(3, round(side / 18))
    min_size = min_size if min_size is not None else max(4, side // 16)
    thickness = thickness if thickness is not None else max(1, round(side / 85))
    source = image if np.asarray(image).ndim == 3 else np.repeat(gray_in[:, :, None], 3, axis=2)
    # Bilateral: averages within regions, not across edges -> texture goes, outlines stay.
    flat = cv2.bilateralFilter(np.ascontiguousarray(source[:, :, :3]), smooth, 75, 75)
    gray = _to_gray(flat)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (line_width, line_width))
    dark_lines = (cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, disk) > line_contrast).astype(np.uint8) * 255
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    lower, upper = auto_canny_thresholds(blurred, sigma=sigma, mask=mask)
    edges = cv2.Canny(blurred, lower, upper, L2gradient=True)
    # Edges along a dark line are its two sides: drop them, keep the line itself.
    near_line = cv2.dilate(dark_lines, np.ones((3, 3), np.uint8), iterations=2)
    strokes = np.maximum(np.where(near_line > 0, 0, edges), dark_lines).astype(np.uint8)
    centre = remove_small_components(skeletonize(strokes).astype(np.uint8) * 255, min_size=min_size)
    if thickness > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness))
        centre = cv2.dilate(centre, kernel)
    return _finish(centre, rgb)


EDGE_STYLES = {"canny": canny_edges, "sketch": sketch_edges}


def edges_for(image: np.ndarray, style: str, *, mask: np.ndarray | None = None,
              rgb: bool = True) -> np.ndarray:
    """Dispatch by style name ("canny" or "sketch")."""
    if style not in EDGE_STYLES:
        raise ValueError(f"unknown edge style {style!r}: choose one of {sorted(EDGE_STYLES)}")
    return EDGE_STYLES[style](image, mask=mask, rgb=rgb)
