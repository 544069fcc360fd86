"""Sketch -> colour image: the generator run in eval or paper mode, on one drawing or a folder of them.

Every sketch is first brought to what the generator was trained on (`preprocess.py`: the sketch
style on the generator's card, `weights.GeneratorCard`, handed in explicitly). Files that `generate` writes carry a tag with
the hash of their pixels, so a later run replaces its own unchanged pictures and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
from pathlib import Path

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torch import nn

from .files import RefusedError, atomic_path, shown
from .imaging import IMAGE_FORMATS, IMAGE_SUFFIXES, open_image, tensor_to_pil
from .preprocess import input_from_steps, preprocess_sketch, preprocess_steps
from .weights import GeneratorCard


# ----------------------------------------------------------------------------- colouring
MODES = ("eval", "paper")
# The default for doodles (colorize, the canvas, the CLI): eval mode. Looked at on the example
# doodles with the shipped generator (trained with batches of 16): eval mode gives clean flat fills;
# paper mode on one image normalises each layer by that one drawing's statistics, which the net
# never saw in training - muddy mixed colours and smudges in the background (notebook 05, section 5;
# val L1 in results/doodle_robustness.json). It is also repeatable: Generate twice, same picture.
DEFAULT_MODE = "eval"


@contextlib.contextmanager
def generation_mode(generator: nn.Module, mode: str):
    """Run G the way `mode` says, then put it back exactly as it was.

    "eval":  dropout off, batch norm uses the running statistics gathered in training.
    "paper": dropout on and batch statistics (paper section 3.3, the reference without --eval).
             Batch norm must not update its running statistics while we generate: momentum 0
             keeps them (running = (1 - momentum) * running + momentum * batch).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    was_training = generator.training
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    generator.train(mode == "paper")
    for m in norms:
        m.momentum = 0.0
    try:
        yield generator
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        generator.train(was_training)


def input_size_of(generator: nn.Module) -> int:
    """The image size a U-Net generator is built for (its bottleneck is 1x1 there)."""
    return 2 ** getattr(generator, "depth", 8)


@torch.no_grad()
def colorize(generator: nn.Module, sketch, *, card: GeneratorCard | None = None, mode: str = DEFAULT_MODE,
             seed: int | None = None, image_size: int | None = None, stroke_width: float | None = None,
             precision: str = "fp32") -> Image.Image:
    """Colour one sketch with a generator -> RGB PIL image of size image_size.

    Parameters:
        generator:    a U-Net generator (e.g. from `load_generator`)
        sketch:       anything `preprocess_sketch` reads (path, PIL image, array, tensor)
        card:         the generator's card (`load_generator`'s second value, `TrainingState.card()`): a
                      doodle is brought to its sketch style; None: no style (strokes as drawn)
        mode:         "eval" (dropout off, running statistics: the same picture every time; the
                      default, see DEFAULT_MODE) or "paper" (dropout on, batch statistics, as in
                      the paper's test time)
        seed:         seeds the dropout noise in "paper" mode, for a repeatable picture
        image_size:   input size (default: the size the generator was built for)
        stroke_width: target stroke width in px (default: the generator's training sketches' width)
        precision:    "fp32" or "bf16" (autocast; 18 -> 15 ms for the shipped generator on a CPU with avx512_bf16)
    """
    size = image_size or input_size_of(generator)
    style = card.sketch_style if card is not None else None
    x = preprocess_sketch(sketch, image_size=size, stroke_width=stroke_width, style=style)
    return translate(generator, x, mode=mode, seed=seed, precision=precision)


@torch.no_grad()
def translate(generator: nn.Module, x: torch.Tensor, *, mode: str = DEFAULT_MODE, seed: int | None = None,
              precision: str = "fp32") -> Image.Image:
    """Run G on a preprocessed input x (1, 3, S, S) in [-1, 1] -> RGB PIL image (`colorize`'s arguments)."""
    device = next(generator.parameters()).device
    x = x.to(device)
    with contextlib.ExitStack() as stack:
        stack.enter_context(generation_mode(generator, mode))
        if seed is not None:
            stack.enter_context(torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]))
            torch.manual_seed(seed)
        if precision == "bf16":
            stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
        elif precision != "fp32":
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        y = generator(x)  # (1, 3, S, S) in [-1, 1]
    return tensor_to_pil(y.float())


def side_by_side(*images: Image.Image, gap: int = 4) -> Image.Image:
    """Images in one row on white, all scaled to the first one's height."""
    height = images[0].height
    scaled = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height))
              for im in images]
    row = Image.new("RGB", (sum(im.width for im in scaled) + gap * (len(scaled) - 1), height), "white")
    x = 0
    for im in scaled:
        row.paste(im, (x, 0))
        x += im.width + gap
    return row


# Pictures `generate` writes carry this text and the SHA-256 of their pixels as they decode (a PNG
# text chunk, a JPEG or GIF comment, WebP or TIFF XMP, after a BMP's pixel data). A later run
# replaces a file only while its pixels still hash the same: a result retouched in an editor that
# kept the tag (GIMP keeps JPEG comments) is no longer ours, and nothing without the tag ever was.
RESULT_TAG = "made by pix2pix_lib generate"
_TAG = re.compile(re.escape(RESULT_TAG).encode() + rb"; pixels sha256 ([0-9a-f]{64})")
MAX_RESULT_BYTES = 256 * 2**20  # a picture of ours is far smaller; a larger file is not read


def pixel_digest(image: Image.Image) -> str:
    """SHA-256 of an image's size and RGBA pixels (any mode: a palette GIF hashes by its colours)."""
    return hashlib.sha256(b"%dx%d:" % image.size + image.convert("RGBA").tobytes()).hexdigest()


def result_state(path: Path) -> str:
    """"ours": a picture an earlier `generate` wrote, unchanged since; "edited": it carries the tag but
    its pixels changed; "other": anything else (no tag, no picture of our formats, unreadable)."""
    try:
        with open(path, "rb") as file:  # read once: the tag and the pixels come from the same bytes
            data = file.read(MAX_RESULT_BYTES + 1)
        tags = {m.decode() for m in _TAG.findall(data)}
        fmt = IMAGE_FORMATS.get(path.suffix.lower())
        if not tags or fmt is None or len(data) > MAX_RESULT_BYTES:
            return "other"
        image = open_image(data, formats=(fmt,), name=shown(path))  # our formats only: none other is ours
    except (OSError, ValueError, SyntaxError):
        return "other"
    return "ours" if pixel_digest(image) in tags else "edited"


def made_by_generate(path: Path) -> bool:
    """True when `path` is a picture an earlier `generate` wrote and nobody changed since (`result_state`)."""
    return result_state(path) == "ours"


def save_result(image: Image.Image, dst: str | Path, *, force: bool = False) -> Path:
    """Save a generated picture in the format its suffix names, tagged with the hash of its pixels, atomically.

    Checked again at the write, not only when a folder's outputs were planned minutes before: a
    file that appeared since, or was edited, is kept (RefusedError) unless `force`.
    """
    dst = Path(dst)
    fmt = IMAGE_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{shown(dst)}: generate writes {', '.join(IMAGE_FORMATS)} pictures; choose one of those")
    # The pixels are hashed as they decode (JPEG and WebP are lossy, GIF has a palette); the tag
    # is metadata, so writing it changes none of them.
    digest = pixel_digest(open_image(_encoded(image, fmt, ""), formats=(fmt,)))
    free = not (dst.exists() or dst.is_symlink())
    _refuse_overwrite(dst, force)
    with atomic_path(dst) as tmp:
        tmp.write_bytes(_encoded(image, fmt, f"{RESULT_TAG}; pixels sha256 {digest}"))
        if free and not force:
            try:  # a free name is linked into place, so a file that appears meanwhile is never replaced
                os.link(tmp, dst)  # (the rename that follows, between two links of one file, does nothing)
            except FileExistsError:
                raise RefusedError(f"{shown(dst)}: appeared while generate was writing; it is left as it is") from None
    return dst


def _encoded(image: Image.Image, fmt: str, tag: str) -> bytes:
    """`image` as `fmt` bytes, carrying `tag` where the format keeps text (a BMP: after its pixel data)."""
    info = PngInfo()
    info.add_text("Software", tag)
    where = {"PNG": {"pnginfo": info}, "JPEG": {"comment": tag}, "GIF": {"comment": tag},
             "WEBP": {"xmp": tag.encode()}, "TIFF": {"tiffinfo": {700: tag.encode()}}}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **(where.get(fmt, {}) if tag else {}))
    return buffer.getvalue() + (b"\n" + tag.encode() if fmt == "BMP" and tag else b"")


def _refuse_overwrite(dst: Path, force: bool) -> None:
    if dst.is_dir():
        raise RefusedError(f"{shown(dst)}: -o names a folder; give a file name (or pass a folder of sketches)")
    if dst.suffix.lower() not in IMAGE_FORMATS:
        raise ValueError(f"{shown(dst)}: generate writes {', '.join(IMAGE_FORMATS)} pictures; choose one of those")
    state = "ours" if force or not (dst.exists() or dst.is_symlink()) else result_state(dst)
    if state == "edited":
        raise RefusedError(f"{shown(dst)}: generate wrote it, but its pixels changed since (edited?); it is kept "
                           "(choose another -o, or pass --force to replace it)")
    if state == "other":
        raise RefusedError(f"{shown(dst)}: exists and was not written by generate; it is left as it is "
                           "(choose another -o, or pass --force to replace it)")


def output_names(files: list[Path]) -> dict[Path, str]:
    """Output file name per sketch: `<stem>.png`, or `<stem>_<ext>.png` where stems collide (a.jpg, a.png)."""
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem.lower()] = stems.get(path.stem.lower(), 0) + 1
    names, taken = {}, set()
    for path in files:  # a.png, a.jpg and a_png.png: the third gets a_png_2.png, never a shared file
        name = f"{path.stem}.png" if stems[path.stem.lower()] == 1 else f"{path.stem}_{path.suffix[1:].lower()}.png"
        stem, n = name[:-4], 2
        while name.lower() in taken:
            name, n = f"{stem}_{n}.png", n + 1
        names[path] = name
        taken.add(name.lower())
    return names


def plan_outputs(src: str | Path, out: str | Path, *, force: bool = False) -> list[tuple[Path, Path]]:
    """[(sketch, output file)] for a sketch file or a folder of them, refusing before any work is done.

    Refused (RefusedError): `out` is the input itself; an output that exists and was not written by
    `generate` (unless `force`). In a folder, every entry named like an image counts - a broken
    link or a folder named x.png is planned too, and reported when it fails.
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"{shown(src)}: no such sketch file or folder")
    if out.exists() and out.resolve() == src.resolve():
        raise RefusedError(f"{shown(out)}: -o is the input itself; writing there would replace "
                           f"{'the sketches' if src.is_dir() else 'the drawing'} with the colouring. Choose another -o")
    if not src.is_dir():
        _refuse_overwrite(out, force)
        return [(src, out)]
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{shown(src)}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    if out.suffix.lower() in IMAGE_SUFFIXES or (out.exists() and not out.is_dir()):
        raise ValueError(f"{shown(out)}: with a folder of sketches, -o must be a folder")
    names = output_names(files)
    plan = [(path, out / names[path]) for path in files]
    for _, dst in plan:
        _refuse_overwrite(dst, force)
    return plan


def colorize_file(generator: nn.Module, src: str | Path, dst: str | Path, *, card: GeneratorCard | None = None,
                  mode: str = DEFAULT_MODE, seed: int | None = None, stroke_width: float | None = None,
                  with_sketch: bool = False, force: bool = False) -> str:
    """Colour one sketch file into `dst` (`save_result`); returns the ink polarity assumed.

    card: the generator's card (its sketch style, as `colorize`). with_sketch: write the preprocessed sketch
    and the result side by side. force: replace whatever is at `dst`.
    """
    steps = preprocess_steps(src, image_size=input_size_of(generator), stroke_width=stroke_width, measure=False,
                             style=card.sketch_style if card is not None else None)
    x = input_from_steps(steps)  # (1, 3, S, S)
    result = translate(generator, x, mode=mode, seed=seed)
    save_result(side_by_side(tensor_to_pil(x), result) if with_sketch else result, dst, force=force)
    return steps["polarity"]
