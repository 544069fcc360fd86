"""Images: files in (EXIF, size limits) and out (atomic), tensors in [-1, 1], grids and credit bands.

Every other module (datasets, training samples, generation, the canvas, notebooks) converts
through these functions, so the convention cannot drift.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .files import atomic_path, shown


# Every image file suffix the library reads (datasets, sketches, masks' photos), and the one Pillow
# decoder each names. Pillow is only ever asked for these: by default it would take any of its ~40
# formats whatever the name says, and an EPS file named sketch.png makes it run Ghostscript.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP", ".gif": "GIF",
                 ".tif": "TIFF", ".tiff": "TIFF"}
IMAGE_SUFFIXES = tuple(IMAGE_FORMATS)
READ_FORMATS = tuple(sorted(set(IMAGE_FORMATS.values())))
# The most pixels an input image may have: 8000 x 8000, more than any photo or drawing here needs.
# Decoding is refused above it, before the memory is allocated (a 400-byte PNG can claim 10 GB).
MAX_IMAGE_PIXELS = 64_000_000


def open_image(path: str | Path | bytes, *, formats: tuple[str, ...] = READ_FORMATS, name: str = "image") -> Image.Image:
    """Read an image file (or its bytes): decoded, upright (EXIF orientation applied), of bounded size.

    Every module that reads an image goes through here, and Pillow is asked only for `formats`
    (READ_FORMATS: the decoders IMAGE_SUFFIXES name), so PostScript, PDF or any other format Pillow
    knows is refused whatever the file is called. `name` labels bytes in messages. Errors are one
    line naming the file: FileNotFoundError when there is no file, ValueError when it is not a
    readable image of those formats or too large.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        source, path = io.BytesIO(bytes(path)), name
    else:
        path = source = Path(path)
        if not path.is_file():
            problem = ("a folder, not an image" if path.is_dir() else
                       "a broken link" if path.is_symlink() else "no such image file")
            raise FileNotFoundError(f"{shown(path)}: {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as im:
                check_image_size(im.size, shown(path))
                im.load()  # decode now: a truncated file fails here, not later in a DataLoader worker
                return upright(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(bomb_message(path, err)) from None
    except UnidentifiedImageError:
        raise ValueError(f"{shown(path)}: not an image of a format this reads ({', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError) as err:
        if str(err).startswith(shown(path)):
            raise
        raise ValueError(f"{shown(path)}: cannot read image ({err})") from None


def open_rgb(path: str | Path | bytes, *, formats: tuple[str, ...] = READ_FORMATS, name: str = "image") -> np.ndarray:
    """`open_image` as an 8-bit RGB array (H, W, 3) (`pil_to_rgb_array`); every error names the file."""
    image = open_image(path, formats=formats, name=name)
    try:
        return pil_to_rgb_array(image)
    except ValueError as err:
        raise ValueError(f"{shown(name if isinstance(path, (bytes, bytearray, memoryview)) else path)}: {err}") from None


def bomb_message(path: str | Path, err: Exception) -> str:
    """One line for PIL's decompression-bomb refusal (it fires before our own size check above 179 MP)."""
    return f"{shown(path)}: too many pixels to read safely, more than the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels this reads ({err})"


def check_image_size(size: tuple[int, int], path: str | Path = "image") -> None:
    """Raise ValueError when an image of `size` (w, h) is over MAX_IMAGE_PIXELS (checked before decoding)."""
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise ValueError(f"{path}: {w}x{h} is {w * h / 1e6:.0f} megapixels: too many pixels to read safely, more "
                         f"than the {MAX_IMAGE_PIXELS / 1e6:.0f} this reads; scale it down first")


def upright(im: Image.Image) -> Image.Image:
    """A copy of `im` turned the way its EXIF orientation tag says (phone photos are stored sideways)."""
    return ImageOps.exif_transpose(im) or im.copy()


def normalize_to_neg_one_to_one(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the range of the generator's Tanh)."""
    return x * 2 - 1


def unnormalize_to_zero_to_one(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (a generator output can overshoot by rounding)."""
    return ((x + 1) / 2).clamp(0, 1)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> float tensor (3, H, W) in [-1, 1]. Any mode is made RGB first (`pil_to_rgb_array`)."""
    array = pil_to_rgb_array(image).astype(np.float32) / 255.0  # (H, W, 3)
    return normalize_to_neg_one_to_one(torch.from_numpy(array).permute(2, 0, 1).contiguous())


def pil_to_rgb_array(im: Image.Image) -> np.ndarray:
    """PIL image of any mode -> uint8 array (H, W, 3).

    Grayscale and palette images become RGB; transparent images are composited on white (the
    background every dataset here uses); 16-bit images are scaled to 8 bits, not clipped.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale (PNG opens as "I;16" or "I"): scale 0..65535 -> 0..255.
        array = np.asarray(im).astype(np.float32)
        array = np.clip(array / 257.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[:, :, None], 3, axis=2)
    if im.mode == "F":
        array = np.asarray(im, dtype=np.float32)
        if not np.isfinite(array).all():  # NaN would become black pixels without a word
            raise ValueError("a floating-point image with NaN or infinite pixels; save it as 8-bit")
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ValueError as err:  # a mode Pillow cannot turn into RGB (TIFF's "La", ...)
        raise ValueError(f"cannot read a {im.mode} image as RGB ({err}); save it as RGB") from None


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) or (1, 3, H, W) in [-1, 1] -> RGB PIL image."""
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"tensor_to_pil takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got {tuple(x.shape)}")
    array = unnormalize_to_zero_to_one(x.detach().float().cpu()).mul(255).round().byte()
    array = array.expand(3, -1, -1).permute(1, 2, 0).numpy()  # (H, W, 3) uint8
    return Image.fromarray(array, mode="RGB")


def save_image_atomic(image: Image.Image, path: str | Path, **save_kwargs) -> Path:
    """Save a PIL image so that it appears whole or not at all (see `files.atomic_path`)."""
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{shown(path)}: cannot tell the image format from the suffix {path.suffix!r}")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)
    return path


GRID_PADDING = 2  # px between (and around) the images of a sample grid


def make_sample_grid(real_a: torch.Tensor, fake_b: torch.Tensor, real_b: torch.Tensor) -> Image.Image:
    """One row per example: input | generated | target. Tensors (N, 3, H, W) in [-1, 1]."""
    if not (real_a.shape == fake_b.shape == real_b.shape):
        raise ValueError(f"shapes differ: {tuple(real_a.shape)}, {tuple(fake_b.shape)}, {tuple(real_b.shape)}")
    triplets = torch.stack([real_a, fake_b, real_b], dim=1).flatten(0, 1)  # (3N, 3, H, W), row-major
    grid = _grid_of_rows(unnormalize_to_zero_to_one(triplets.detach().float().cpu()), ncols=3)
    return Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())


def _grid_of_rows(images: torch.Tensor, ncols: int, pad: int = GRID_PADDING) -> torch.Tensor:
    """torchvision's make_grid(nrow=ncols, padding=pad, pad_value=1) for full rows, as a pad and a reshape.

    (importing torchvision.utils pulls in torch._dynamo: over a second of every command's start-up.)
    """
    n, c, h, w = images.shape
    tiles = torch.nn.functional.pad(images, (pad, 0, pad, 0), value=1.0)  # white above and left of each
    grid = tiles.reshape(n // ncols, ncols, c, h + pad, w + pad).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, (n // ncols) * (h + pad), ncols * (w + pad))
    return torch.nn.functional.pad(grid, (0, pad, 0, pad), value=1.0)  # and below and right of the last


def sample_grid_tile(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    """One image of a `make_sample_grid` grid (as an array): col 0 input, 1 generated, 2 target."""
    step = (grid.shape[1] - GRID_PADDING) // 3
    rows = (grid.shape[0] - GRID_PADDING) // step
    if not (0 <= row < rows and 0 <= col < 3):
        raise IndexError(f"the grid has {rows} rows and 3 columns, asked for ({row}, {col})")
    top, left = GRID_PADDING + row * step, GRID_PADDING + col * step
    return grid[top:top + step - GRID_PADDING, left:left + step - GRID_PADDING]


def credit_band(image: Image.Image, text: str, *, line_height: int = 14) -> Image.Image:
    """A copy of `image` with `text` in a white band under it, wrapped to the image's width."""
    image = image.convert("RGB")
    text = text.replace("\u2013", "-").replace("\u2014", "-")  # PIL's built-in font has no dashes
    measure = ImageDraw.Draw(image)
    lines: list[str] = []
    for word in text.split():
        if lines and measure.textlength(f"{lines[-1]} {word}") <= image.width - 8:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    out = Image.new("RGB", (image.width, image.height + line_height * len(lines) + 4), "white")
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((4, image.height + 2 + i * line_height), line, fill=(90, 90, 90))
    return out
