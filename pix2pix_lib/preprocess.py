"""Sketch in any form -> the generator's input (notebook 05, the canvas, the CLI).

A generator only knows the sketches it was trained on: OpenMoji line art, black strokes of one
width on white, the drawing filling most of a square. A doodle from a person differs in every
one of those ways, so every source (file, PIL image, array, canvas) goes through the same
preprocessing before the generator sees it:

    any input -> grayscale -> ink = dark strokes on white (whatever the polarity, lighting, table)
              -> crop to the drawing, pad to a square with an emoji-like margin -> resize
              -> stroke width normalised to the training width -> (1, 3, S, S) in [-1, 1]
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .imaging import (check_image_size, normalize_to_neg_one_to_one, open_rgb, pil_to_rgb_array,
                      unnormalize_to_zero_to_one, upright)
from .strokes import estimate_stroke_width, normalize_stroke_width, target_stroke_width


# Fraction of the square that the drawing's longer side fills. The bounding box of OpenMoji line
# art spans a median 0.77 of the 72-unit viewBox (10th-90th percentile 0.70-0.89, same 60 files);
# a doodle is cropped to its bounding box and padded so that it fills the same fraction.
DRAWING_FILL = 0.77


# Fewer dark pixels than this fraction of the input image (or than 4) counts as an empty drawing.
MIN_INK_FRACTION = 0.0005


# ----------------------------------------------------------------------------- sketch -> array
def load_gray(sketch) -> np.ndarray:
    """Any sketch (path, PIL image, numpy array, torch tensor) -> float32 (H, W) in [0, 1], 1 = white.

    Transparent pixels are composited on white first: a PNG drawn on a transparent background
    has black strokes *and* black (fully transparent) background pixels. Files and PIL images
    are turned upright by their EXIF orientation; images over `MAX_IMAGE_PIXELS` are refused.
    """
    if isinstance(sketch, (str, Path)):  # our formats only, upright, bounded, on white; errors name the file
        return np.asarray(Image.fromarray(open_rgb(sketch)).convert("L"), dtype=np.float32) / 255.0
    if isinstance(sketch, Image.Image):
        check_image_size(sketch.size)
        rgb = Image.fromarray(pil_to_rgb_array(upright(sketch)))  # transparency on white, 16-bit scaled
        return np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0
    if isinstance(sketch, torch.Tensor):
        t = sketch.detach().float().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim == 3 and t.shape[0] in (1, 3, 4):  # (C, H, W) -> (H, W, C)
            t = t.permute(1, 2, 0)
        if t.min() < 0:  # a [-1, 1] tensor, like the ones the networks use
            t = unnormalize_to_zero_to_one(t)
        elif t.max() > 1.0:  # 0..255 values
            t = t / 255.0
        sketch = t.numpy()
    if not isinstance(sketch, np.ndarray):
        raise ValueError(f"cannot read a sketch from a {type(sketch).__name__}")
    if sketch.ndim >= 2:
        check_image_size((sketch.shape[1], sketch.shape[0]), "the sketch array")
    if sketch.dtype.kind not in "biuf" or sketch.size == 0:
        raise ValueError(f"a sketch array must hold numbers, got an empty array or dtype {sketch.dtype}")
    a = sketch.astype(np.float32)
    if not np.isfinite(a).all():  # NaN would otherwise become black ink
        raise ValueError("the sketch array holds NaN or infinite values; give it numbers in [0, 1] or 0-255")
    if sketch.dtype == np.uint8 or a.max() > 1.0:
        a = a / 255.0
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] == 4:  # composite RGBA on white
        alpha = a[..., 3:4]
        a = a[..., :3] * alpha + (1 - alpha)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # PIL's "L" weights
    if a.ndim != 2:
        raise ValueError(f"a sketch array must be (H, W), (H, W, 3) or (H, W, 4), got {sketch.shape}")
    return np.clip(a, 0.0, 1.0)


POLARITIES = ("dark ink on light", "light ink on dark")


def ink_from_gray(gray: np.ndarray) -> tuple[np.ndarray, str]:
    """Grayscale (1 = white) -> (ink (1 = stroke), the polarity assumed), for drawings and photos of them.

    Strokes are thin; paper, a board, a table are not. On a copy at most 256 px wide, the pixels are
    split into dark and light (Otsu), and each side's *thick* part is what survives an opening with
    a disc a tenth of the image wide. Thick light and no thick dark: paper, so dark ink; the other
    way round: a board, so light ink. Both: if only the light part reaches the border, it is the
    paper of a bold drawing (dark ink); if only the dark part does, it is a table round the paper or
    a board, and the side with more thin pixels is the ink; otherwise the side with clearly more
    (twice) thin pixels, else the border's colour. A frame along the border or a dark table cannot
    outvote the strokes, as they did when the border's colour always decided.

    A clean drawing (an even background all along the border) keeps its ink exactly: 1 - gray (or
    gray). A photo of one (a table around the paper, a shadow across it) is divided by the
    background's brightness first, so the table and the shadow become paper, not ink.
    """
    h, w = gray.shape
    scale = min(1.0, 256 / max(h, w))  # the background is smooth: look at a small copy
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else gray
    k = max(5, round(max(small.shape) / 10)) | 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    u8 = np.clip(small * 255 + 0.5, 0, 255).astype(np.uint8)
    _, light = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = 1 - light
    thick_light, thick_dark = (cv2.morphologyEx(m, cv2.MORPH_OPEN, disc) for m in (light, dark))
    share = float(small.size)
    has_paper, has_board = thick_light.sum() / share > 0.02, thick_dark.sum() / share > 0.02
    thin_dark, thin_light = int((dark - thick_dark).sum()), int((light - thick_light).sum())
    rim_light, rim_dark = (bool(np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]]).any()) for m in (thick_light, thick_dark))
    if has_paper != has_board:
        dark_ink = has_paper
    elif has_paper and rim_light != rim_dark:
        dark_ink = rim_light or thin_dark > thin_light
    else:
        if thin_dark > 2 * thin_light or thin_light > 2 * thin_dark:
            dark_ink = thin_dark > thin_light
        else:  # bold strokes, a blank or a uniform image: the border's colour is the background
            dark_ink = np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])) >= 0.5
    polarity = POLARITIES[0] if dark_ink else POLARITIES[1]
    lit = gray if dark_ink else 1.0 - gray                     # from here on: dark strokes on light
    lit_small = small if dark_ink else 1.0 - small
    background = cv2.morphologyEx(lit_small, cv2.MORPH_CLOSE, disc)  # the strokes closed over: paper
    band = max(1, round(0.05 * max(small.shape)))
    rim = np.concatenate([background[:band].ravel(), background[-band:].ravel(),
                          background[:, :band].ravel(), background[:, -band:].ravel()])
    if np.mean(rim > 0.8) >= 0.95:  # clean: even, bright background all round
        return (1.0 - lit).astype(np.float32), polarity
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    ink = np.clip(1.25 * (1.0 - (lit + 0.02) / (background + 0.02)), 0.0, 1.0)  # shadows -> paper
    # Thick regions of the ink's colour (a table around the paper) are surroundings, not strokes.
    surroundings = cv2.dilate(thick_dark if dark_ink else thick_light, np.ones((3, 3), np.uint8))
    ink[cv2.resize(surroundings, (w, h), interpolation=cv2.INTER_NEAREST) > 0] = 0.0
    return ink.astype(np.float32), polarity


def check_stroke_width(width, image_size: int) -> float:
    """A target stroke width as a float, or ValueError: finite, from 1 px to an eighth of the image."""
    if not (is_number(width) and 1.0 <= width <= image_size / 8):
        raise ValueError(f"stroke width must be between 1 and {image_size / 8:g} px at {image_size} px "
                         f"(the training line art's is {target_stroke_width(image_size):.1f}), got {str(width)[:40]}")
    return float(width)


def is_number(value) -> bool:
    """A real number (numpy's too), bools and strings not: NaN then fails every range check, and a 10**400
    is only compared, never converted. The canvas checks its strokes with it too."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def preprocess_steps(sketch, *, image_size: int = 256, stroke_width: float | None = None,
                     measure: bool = True, style: dict | None = None) -> dict:
    """Every stage of `preprocess_sketch`, as arrays in [0, 1] for display (notebook 05).

    Returns a dict: "gray" (the input, 1 = white), "ink" (1 = stroke), "square" (cropped and
    padded), "resized" (at image_size), "normalized" (stroke width fixed; 1 = white again),
    "stroke_width_before" and (when `measure`) "stroke_width_after" (px at image_size).

    `style` is the generator's own sketch style (`measure_sketch_style` of its training sketches,
    stored in its weights file): the stroke width and the fill the drawing is brought to. None:
    the OpenMoji line art's (STROKE_WIDTH_AT_256, DRAWING_FILL).
    """
    style = usable_style(style) or {}
    if stroke_width is not None:
        target = check_stroke_width(stroke_width, image_size)
    elif "stroke_width_at_256" in style:
        target = max(1.0, style["stroke_width_at_256"] * image_size / 256)
    else:
        target = target_stroke_width(image_size)
    fill = float(style.get("fill", DRAWING_FILL))
    gray = load_gray(sketch)                                   # (H, W), 1 = white
    ink, polarity = ink_from_gray(gray)                        # (H, W), 1 = stroke
    # Faint pixels (antialiasing, paper texture, JPEG noise) are not part of the drawing.
    mask = ink > 0.5
    if mask.sum() < max(4, MIN_INK_FRACTION * mask.size):
        raise ValueError(f"the drawing is empty: {int(mask.sum())} dark pixels on a "
                         f"{gray.shape[1]}x{gray.shape[0]} image; draw something first")
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = ink[top:bottom, left:right]                         # (h, w)
    if max(crop.shape) > 4 * image_size:
        # Shrink before padding: a 30000x10 line would otherwise become a 39000^2 square (6 GB).
        f = 4 * image_size / max(crop.shape)
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    side = int(np.ceil(max(crop.shape) / fill))
    square = np.zeros((side, side), np.float32)
    y0, x0 = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop  # (side, side), centred

    # Work at twice the output size, then average down: the result is antialiased like the
    # rendered line art. INTER_AREA keeps thin strokes as grey instead of dropping them.
    work = 2 * image_size
    interp = cv2.INTER_AREA if side > work else cv2.INTER_LINEAR
    big = cv2.resize(square, (work, work), interpolation=interp)  # (2S, 2S)
    resized = cv2.resize(square, (image_size, image_size), interpolation=cv2.INTER_AREA)
    big_mask = big > 0.25  # lower threshold: a 1-px line shrunk by 4 is ~0.25 grey
    width_before = estimate_stroke_width(big_mask) / 2
    fixed = normalize_stroke_width(big_mask, 2 * target).astype(np.float32)
    normalized = 1.0 - cv2.resize(fixed, (image_size, image_size), interpolation=cv2.INTER_AREA)
    steps = {"gray": gray, "ink": ink, "square": 1.0 - square, "resized": 1.0 - resized,
             "normalized": normalized, "stroke_width_before": width_before, "polarity": polarity}
    if measure:
        steps["stroke_width_after"] = estimate_stroke_width(fixed > 0.5) / 2
    return steps


def preprocess_sketch(sketch, *, image_size: int = 256, stroke_width: float | None = None,
                      style: dict | None = None) -> torch.Tensor:
    """Any sketch -> the generator's input: a (1, 3, S, S) float tensor in [-1, 1].

    Parameters:
        sketch:       a file path, PIL image, numpy array ((H, W), (H, W, 3) or (H, W, 4); uint8
                      or float in [0, 1]) or a torch tensor; any polarity, any size
        image_size:   S, the generator's input size
        stroke_width: target stroke width in px at S (default: the generator's `style`, else the
                      OpenMoji line art's, `STROKE_WIDTH_AT_256` scaled to S)
        style:        the generator's sketch style (see `preprocess_steps`)

    Raises ValueError("the drawing is empty: ...") for a blank or near-blank drawing.
    """
    return input_from_steps(preprocess_steps(sketch, image_size=image_size, stroke_width=stroke_width,
                                             measure=False, style=style))


def usable_style(style: dict | None) -> dict | None:
    """`style` when its numbers make sense for a doodle (fill 0.3-0.98, width 0.5-32 px at 256), else None.

    A weights file is input like any other: a broken style is ignored, with a warning, rather than
    dividing by zero or drawing the doodle out of the picture.
    """
    if not style:
        return None
    fill, width = (style.get("fill", DRAWING_FILL), style.get("stroke_width_at_256", 6.8)) if isinstance(style, dict) else (0, 0)
    if is_number(fill) and is_number(width) and 0.3 <= fill <= 0.98 and 0.5 <= width <= 32:
        return style
    warnings.warn(f"ignoring the generator's sketch style {str(style)[:200]}: outside fill 0.3-0.98 / width 0.5-32 px",
                  stacklevel=3)
    return None


def measure_sketch_style(sketches) -> dict | None:
    """The stroke width (px at 256) and fill (longer side of the drawing / image side) of training sketches.

    `sketches`: grayscale arrays (H, W) in [0, 1], 1 = white. Medians over them, measured the way
    `preprocess_steps` measures a doodle, so that a doodle is brought to what the model was trained
    on - not to the OpenMoji line art's 6.8 px and 0.77 (edges2shoes' HED edges: ~0.75 px). None
    when the inputs are no line art (photos: more than a fifth of the picture dark) or hold no ink.
    """
    widths, fills, inks = [], [], []
    for gray in sketches:
        ink = 1.0 - cv2.resize(np.asarray(gray, np.float32), (512, 512), interpolation=cv2.INTER_AREA)
        mask = ink > 0.25
        inks.append(float(mask.mean()))
        if mask.sum() < 16:
            continue
        rows, cols = np.nonzero(mask)
        fills.append(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) / 512)
        widths.append(estimate_stroke_width(mask) / 2)
    if not widths or np.median(inks) > 0.2:  # no ink, or inputs that are photos, not line art
        return None
    return usable_style({"stroke_width_at_256": round(float(np.median(widths)), 2),
                         "fill": round(float(np.median(fills)), 3), "measured_on": len(widths)})


def input_from_steps(steps: dict) -> torch.Tensor:
    """The generator's input (1, 3, S, S) in [-1, 1] from `preprocess_steps`' "normalized" picture."""
    x = torch.from_numpy(np.ascontiguousarray(steps["normalized"])).float()  # (S, S) in [0, 1]
    return normalize_to_neg_one_to_one(x).expand(1, 3, -1, -1).contiguous()  # (1, 3, S, S)
