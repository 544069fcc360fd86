"""A drawing canvas for notebooks: draw a doodle, press Generate, see the generator colour it.

An anywidget (works in JupyterLab, Notebook 7, VS Code and Colab). Its JavaScript (canvas.js,
beside this file) draws the strokes in the browser, so the pen stays smooth while the kernel is
busy; Python hears about the drawing once per stroke, as a PNG in the synced trait `drawing_png`.
Synced traits are the only channel between the two sides:

    trait              direction       meaning
    drawing_png        JS -> Python    the whole drawing as PNG bytes, sent when a stroke ends
    strokes            JS -> Python    number of strokes on the canvas
    generate_requests  JS -> Python    bumped by the Generate button
    result_png         Python -> JS    the generated image, shown beside the drawing
    background_png     Python -> JS    a doodle loaded with `load_image`, drawn under new strokes
    status             Python -> JS    one line of text under the canvas (errors included)
    clear_requests     Python -> JS    bumped by `clear()`: the front end drops its strokes
    pen_width, tool, live  both        the controls ("pen"/"eraser"; live = generate every stroke)

Without a front end (nbconvert, nbval, a plain script) nothing is ever drawn: set the drawing with
`load_image`, or set `drawing_png` yourself, and call `generate()`.
"""

from __future__ import annotations

import io
import time
import traceback
from pathlib import Path
from typing import Callable

import anywidget
import numpy as np
import traitlets
from PIL import Image

from .generate import DEFAULT_MODE, colorize
from .preprocess import load_gray
from .imaging import check_image_size, pil_to_rgb_array, save_image_atomic


def _bytes_from_json(value, widget) -> bytes:
    # The front end's binary values arrive as memoryview buffers; the Bytes trait wants bytes.
    return b"" if value is None else bytes(value)


# Serializer for the binary traits (ipywidgets' Image widget does the same).
BYTES = {"from_json": _bytes_from_json}


def png_bytes(image: Image.Image) -> bytes:
    """PIL image -> PNG bytes (what travels in the *_png traits)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_from_png(data: bytes) -> Image.Image | None:
    """PNG bytes -> RGB PIL image on white (None for no bytes)."""
    if not data:
        return None
    with Image.open(io.BytesIO(bytes(data))) as im:
        check_image_size(im.size, "the canvas image")  # before decoding: the bytes come from a browser
        im.load()
        return Image.fromarray(pil_to_rgb_array(im))


MIN_SIZE, MAX_SIZE = 16, 2048  # canvas side in px


class DoodleCanvas(anywidget.AnyWidget):
    """Draw in the browser, colour in Python.

    Parameters:
        generator:   a U-Net generator (e.g. from `load_generator`); None: drawing only
        on_generate: called as on_generate(drawing, result) (PIL images) after each generation,
                     e.g. to keep a gallery or to record what arrived
        size:        canvas side in px (the drawing's PNG is size x size)
        mode:        "eval" (the default, DEFAULT_MODE) or "paper", passed to `colorize`
        seed:        dropout seed for mode "paper" (None: a new picture each time)
        pen_width:   initial pen width in px
        live:        regenerate after every stroke
    """

    _esm = Path(__file__).with_name("canvas.js")
    _css = Path(__file__).with_name("canvas.css")

    size = traitlets.Int(256).tag(sync=True)
    drawing_png = traitlets.Bytes(b"").tag(sync=True, **BYTES)
    background_png = traitlets.Bytes(b"").tag(sync=True, **BYTES)
    result_png = traitlets.Bytes(b"").tag(sync=True, **BYTES)
    pen_width = traitlets.Int(4).tag(sync=True)
    tool = traitlets.Enum(("pen", "eraser"), default_value="pen").tag(sync=True)
    live = traitlets.Bool(False).tag(sync=True)
    generate_requests = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    strokes = traitlets.Int(0).tag(sync=True)
    clear_requests = traitlets.Int(0).tag(sync=True)  # Python -> JS: bumped by `clear()`
    # Python -> JS: bumped by `load_image()`. Loading the same doodle twice leaves background_png
    # unchanged, and traitlets sends only changes: the counter is what tells the page to reload.
    load_requests = traitlets.Int(0).tag(sync=True)

    def __init__(self, generator=None, *, on_generate: Callable | None = None, size: int = 256,
                 mode: str = DEFAULT_MODE, seed: int | None = None, pen_width: int = 4,
                 live: bool = False, **kwargs):
        super().__init__(size=size, pen_width=pen_width, live=live, **kwargs)
        self.generator = generator
        self.on_generate = on_generate
        self.mode = mode
        self.seed = seed
        self.last_error: str | None = None  # the traceback of the last failure (status shows one line)
        self.status = "draw, then press Generate" if generator is not None else "draw something"

    @traitlets.validate("size")
    def _check_size(self, proposal) -> int:
        # Checked on every assignment, not only in __init__: a huge canvas exhausts the browser and the kernel.
        size = proposal["value"]
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise traitlets.TraitError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
        return size

    # ---- what the front end sends
    @traitlets.observe("generate_requests")
    def _on_generate_request(self, change) -> None:
        self.generate()

    @traitlets.observe("drawing_png")
    def _on_drawing(self, change) -> None:
        if self.live and change["new"]:
            self.generate()

    # ---- the drawing and the result as images
    @property
    def drawing(self) -> Image.Image | None:
        """The current drawing (RGB, size x size), or None before anything was drawn."""
        return image_from_png(self.drawing_png)

    @property
    def result(self) -> Image.Image | None:
        """The last generated image, or None."""
        return image_from_png(self.result_png)

    def generate(self) -> Image.Image | None:
        """Colour the current drawing; shows the result beside it. Errors go to `status`.

        Trait observers run inside the widget's message handler, where an exception would be
        swallowed (or land in the log), so every failure becomes a status line instead.
        """
        if self.generator is None:
            self.status = "no generator: create the canvas with DoodleCanvas(generator)"
            return None
        if not self.drawing_png:
            self.status = "the drawing is empty: draw something first"
            return None
        self.status = "generating..."
        try:
            start = time.perf_counter()
            drawing = self.drawing
            result = colorize(self.generator, drawing, mode=self.mode, seed=self.seed)
            elapsed = time.perf_counter() - start
        except ValueError as err:  # the preprocessing's message (e.g. an empty drawing)
            self.status = str(err)
            return None
        except Exception as err:  # noqa: BLE001 - shown to the person drawing, kept in last_error
            self.last_error = traceback.format_exc()
            self.status = f"error: {type(err).__name__}: {err}"
            return None
        self.result_png = png_bytes(result)
        self.status = f"generated {result.width}x{result.height} in {elapsed * 1000:.0f} ms ({self.mode} mode)"
        if self.on_generate is not None:
            try:
                self.on_generate(drawing, result)
            except Exception as err:  # noqa: BLE001
                self.last_error = traceback.format_exc()
                self.status = f"on_generate failed: {type(err).__name__}: {err}"
        return result

    # ---- files
    def load_image(self, source) -> None:
        """Put a doodle (path, PIL image or array) on the canvas, fitted and centred on white."""
        gray = load_gray(source)  # (H, W) in [0, 1], transparency composited on white
        image = Image.fromarray((gray * 255).round().astype(np.uint8), mode="L")
        scale = self.size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.LANCZOS)
        canvas = Image.new("L", (self.size, self.size), 255)
        canvas.paste(image, ((self.size - image.width) // 2, (self.size - image.height) // 2))
        data = png_bytes(canvas.convert("RGB"))
        self.strokes = 0
        self.background_png = data  # the front end draws it and starts a new stroke list
        self.drawing_png = data     # Python has the drawing at once (no front end needed)
        self.load_requests += 1

    def save(self, path_drawing=None, path_result=None) -> list[Path]:
        """Write the drawing and/or the result as PNG files; returns the paths written."""
        written = []
        for path, image, what in ((path_drawing, self.drawing, "drawing"),
                                  (path_result, self.result, "result")):
            if path is None:
                continue
            if image is None:
                raise ValueError(f"{path}: there is no {what} to save yet")
            written.append(save_image_atomic(image, path))
        return written

    def clear(self) -> None:
        """Empty the canvas from Python (the front end redraws)."""
        self.strokes = 0
        self.background_png = b""
        self.drawing_png = b""
        self.result_png = b""
        self.clear_requests += 1  # the front end drops its strokes
