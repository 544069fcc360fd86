"""A drawing canvas for notebooks: draw a doodle, press Generate, see the generator colour it.

An anywidget (works in JupyterLab, Notebook 7, VS Code and Colab). Its JavaScript (canvas.js,
beside this file) paints the strokes in the browser, so the pen stays smooth while the kernel is
busy. The drawing itself lives in the synced model: every view of the canvas, and every reload of
the page, shows the same strokes, and undo/redo work from any of them. Synced traits are the only
channel between the two sides:

    trait              direction       meaning
    strokes, undone    both            the drawing ({tool, width, points} each) and what redo brings back
    background_png     both            an opened or loaded doodle (PNG), painted under the strokes
    drawing_png        JS -> Python    the whole drawing as a size x size PNG, sent when a stroke ends
    generate_requests  JS -> Python    bumped by the Generate button
    result_png         Python -> JS    the generated image, shown beside the drawing (Clear empties it)
    status, busy       both            one line under the canvas (errors included); a generation running
    model_names        Python -> JS    the generators the picker offers (hidden for one)
    model_name         both            the one in use
    pen_width, eraser_width, tool, live    both   the controls (live = generate after every stroke)

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
from .preprocess import is_number, load_gray
from .files import shown
from .imaging import open_rgb, save_image_atomic
from .weights import SHIPPED_SHOES, SHIPPED_WEIGHTS, load_generator


def _bytes_from_json(value, widget) -> bytes:
    return b"" if value is None else bytes(value)  # the front end sends memoryviews; the trait wants bytes


# Serializer for the binary traits (ipywidgets' Image widget does the same).
BYTES = {"from_json": _bytes_from_json}


def png_bytes(image: Image.Image) -> bytes:
    """PIL image -> PNG bytes (what travels in the *_png traits)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_from_png(data: bytes) -> Image.Image | None:
    """PNG bytes -> RGB image on white, or None. Only PNG is decoded: EPS bytes never reach Ghostscript."""
    return Image.fromarray(open_rgb(data, formats=("PNG",), name="the canvas image")) if data else None


MIN_SIZE, MAX_SIZE = 16, 2048  # canvas side in px


def shipped_models() -> dict[str, Path]:
    """The generators that ship with the course, by the name the canvas's picker shows."""
    found = {"emoji (shipped)": SHIPPED_WEIGHTS, "shoes (shipped)": SHIPPED_SHOES}
    return {name: path for name, path in found.items() if path.is_file()}


def _cell_run() -> tuple[str, str] | None:
    """(cell id, execution id) of the notebook cell running now, or None outside one.

    JupyterLab and Notebook 7 send the cell's id with each execution; the request's own id tells
    one run of the cell from the next.
    """
    try:
        from IPython import get_ipython
        kernel = getattr(get_ipython(), "kernel", None)
        parent = (kernel.get_parent() if kernel is not None else None) or {}
    except Exception:  # noqa: BLE001 - no kernel, an old ipykernel: no cell to tell apart
        return None
    cell = parent.get("metadata", {}).get("cellId")
    return (cell, parent.get("header", {}).get("msg_id", "")) if cell else None


MAX_POINTS = 200_000  # points in all strokes together: beyond any drawing, before the messages get heavy
MAX_COORD = 1e6  # px: a pointer dragged far beyond a scaled-down canvas stays well inside


def _number_in(value, low: float, high: float) -> bool:
    return is_number(value) and low <= value <= high


def _check_strokes(strokes: list) -> list:
    """The front end's strokes, checked: a bad one would stop every view from painting."""
    total = 0
    for i, stroke in enumerate(strokes):
        points = stroke.get("points") if isinstance(stroke, dict) else None
        total += len(points) if isinstance(points, list) else 0
        if total > MAX_POINTS:  # before looking at each point
            raise traitlets.TraitError(f"the drawing has more than {MAX_POINTS:,} points: clear it first")
        ok = (isinstance(points, list) and points and stroke.get("tool") in ("pen", "eraser")
              and _number_in(stroke.get("width"), 0, 256) and stroke["width"] > 0
              and all(isinstance(p, list) and len(p) == 2 and all(_number_in(v, -MAX_COORD, MAX_COORD) for v in p)
                      for p in points))
        if not ok:
            raise traitlets.TraitError(f"stroke {i} is not {{tool: pen|eraser, width: 1-256, points: [[x, y], ...]}}")
    return strokes


class DoodleCanvas(anywidget.AnyWidget):
    """Draw in the browser, colour in Python.

    Parameters:
        generator:   a U-Net generator (e.g. from `load_generator`); None: drawing only
        models:      more generators for the picker, name -> generator or weights file (loaded when
                     first picked), e.g. `shipped_models()`; with no `generator`, the first is used
        on_generate: called as on_generate(drawing, result) (PIL images) after each generation,
                     e.g. to keep a gallery or to record what arrived
        size:        canvas side in px (the drawing's PNG is size x size; the page scales it to fit)
        mode:        "eval" (the default, DEFAULT_MODE) or "paper", passed to `colorize`
        seed:        dropout seed for mode "paper" (None: a new picture each time)
        pen_width:   initial pen width in px (the eraser has its own, `eraser_width`)
        live:        regenerate after every stroke

    Re-running the cell that made a canvas closes the canvas it made before, so old canvases and
    their generators do not pile up in the kernel.
    """

    _esm = Path(__file__).with_name("canvas.js")
    _css = Path(__file__).with_name("canvas.css")

    size = traitlets.Int(256).tag(sync=True)
    strokes = traitlets.List(traitlets.Dict()).tag(sync=True)
    undone = traitlets.List(traitlets.Dict()).tag(sync=True)
    drawing_png = traitlets.Bytes(b"").tag(sync=True, echo_update=False, **BYTES)  # no view reads it back
    background_png = traitlets.Bytes(b"").tag(sync=True, **BYTES)
    result_png = traitlets.Bytes(b"").tag(sync=True, **BYTES)
    pen_width = traitlets.Int(4, min=1, max=256).tag(sync=True)
    eraser_width = traitlets.Int(16, min=1, max=256).tag(sync=True)
    tool = traitlets.Enum(("pen", "eraser"), default_value="pen").tag(sync=True)
    live = traitlets.Bool(False).tag(sync=True)
    generate_requests = traitlets.Int(0).tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    model_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    model_name = traitlets.Unicode("").tag(sync=True)

    _made_by_cell: dict[str, tuple[str, list]] = {}  # cell id -> (its last execution, the canvases it made)

    def __init__(self, generator=None, *, models: dict | None = None, on_generate: Callable | None = None,
                 size: int = 256, mode: str = DEFAULT_MODE, seed: int | None = None, pen_width: int = 4,
                 live: bool = False, **kwargs):
        choices = ({} if generator is None else {"model": generator}) | dict(models or {})
        self._models = choices  # name -> generator, or a weights file not loaded yet
        super().__init__(size=size, pen_width=pen_width, live=live, model_names=list(choices),
                         model_name=next(iter(choices), ""), **kwargs)
        self.on_generate = on_generate
        self.mode = mode
        self.seed = seed
        self.last_error: str | None = None  # the traceback of the last failure (status shows one line)
        self.status = "draw, then press Generate" if choices else "draw something"
        self._built = True
        run = _cell_run()
        if run is not None:  # canvases an earlier run of this cell made go; those of this run stay
            cell, execution = run
            last, made = DoodleCanvas._made_by_cell.get(cell, (execution, []))
            if last != execution:
                for earlier in made:
                    earlier.close()
                made = []
            DoodleCanvas._made_by_cell[cell] = (execution, [*made, self])

    def __repr__(self) -> str:
        # The text shown where widgets cannot render (nbconvert, GitHub); ipywidgets 7 cuts it at 110.
        return "DoodleCanvas: to draw, open this in JupyterLab, Notebook 7, VS Code or Colab (or use load_image)"

    def close(self) -> None:
        """Close the widget (its views go) and let go of its generators."""
        self._models = {}
        for cell, (execution, made) in list(DoodleCanvas._made_by_cell.items()):
            if self in made:
                DoodleCanvas._made_by_cell[cell] = (execution, [c for c in made if c is not self])
        super().close()

    @traitlets.validate("size")
    def _check_size(self, proposal) -> int:
        # The views are built at this size: it is fixed once the canvas exists.
        if getattr(self, "_built", False):
            raise traitlets.TraitError("size is fixed once the canvas exists: create a new DoodleCanvas(size=...)")
        size = proposal["value"]
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise traitlets.TraitError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
        return size

    @traitlets.validate("strokes", "undone")
    def _check_stroke_list(self, proposal) -> list:
        return _check_strokes(proposal["value"])

    @traitlets.validate("model_name")
    def _check_model_name(self, proposal) -> str:
        name = proposal["value"]
        if name and name not in self._models:
            raise traitlets.TraitError(f"no model {name!r}: the canvas has {list(self._models)} (add_model adds one)")
        return name

    # ---- the generator in use, and the picker
    @property
    def generator(self):
        """The generator in use (loaded from its file on first use), or None."""
        if self.model_name not in self._models:
            return None
        chosen = self._models[self.model_name]
        if isinstance(chosen, (str, Path)):
            chosen = self._models[self.model_name] = load_generator(chosen)[0]
        return chosen

    @generator.setter
    def generator(self, generator) -> None:
        self.add_model(self.model_name or "model", generator, use=True)

    def add_model(self, name: str, generator_or_path, *, use: bool = False) -> None:
        """Offer another generator (or weights file) in the picker; `use` switches to it."""
        self._models[name] = generator_or_path
        if name not in self.model_names:
            self.model_names = [*self.model_names, name]
        if use or not self.model_name:
            self.model_name = name

    @traitlets.observe("model_name")
    def _on_model_picked(self, change) -> None:
        if not self._models or not change["old"]:  # the first choice, at creation: loaded when used
            return
        try:
            self.generator  # noqa: B018 - loads a weights file now, so a bad one is refused at once
        except Exception as err:  # noqa: BLE001 - any failure to load: back to the last model, said in the status
            self.last_error = traceback.format_exc()
            self._models.pop(change["new"], None)
            self.model_names = [n for n in self.model_names if n in self._models]
            # Back to the one before; that re-enters here and says "model: ...", so the status comes last.
            self.model_name = change["old"] if change["old"] in self._models else next(iter(self._models), "")
            self.status = f"could not use {change['new']!r}: {err}"
            return
        self.result_png = b""  # the old result came from another model
        self.status = f"model: {change['new']}; press Generate"

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
        self.busy = True
        try:
            return self._generate()
        finally:
            self.busy = False

    def _generate(self) -> Image.Image | None:
        try:
            generator = self.generator
        except Exception as err:  # noqa: BLE001 - a weights file that does not load: said, not raised
            self.last_error = traceback.format_exc()
            self.status = f"could not use {self.model_name!r}: {err}"
            return None
        if generator is None:
            self.status = "no generator: create the canvas with DoodleCanvas(generator)"
            return None
        if not self.drawing_png:
            self.status = "the drawing is empty: draw something first"
            return None
        self.status = "generating..."
        try:
            start = time.perf_counter()
            drawing = self.drawing
            result = colorize(generator, drawing, mode=self.mode, seed=self.seed)
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
        """Put a doodle (path, PIL image or array) on the canvas, fitted and centred on white.

        It replaces the drawing (strokes, undo history and the old result go), as Open does.
        """
        gray = load_gray(source)  # (H, W) in [0, 1], transparency composited on white
        image = Image.fromarray((gray * 255).round().astype(np.uint8), mode="L")
        scale = self.size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.LANCZOS)
        canvas = Image.new("L", (self.size, self.size), 255)
        canvas.paste(image, ((self.size - image.width) // 2, (self.size - image.height) // 2))
        data = png_bytes(canvas.convert("RGB"))
        name = shown(Path(source).name) if isinstance(source, (str, Path)) else "the image"
        with self.hold_sync():  # one message: the page never shows new strokes on an old doodle
            self.strokes, self.undone = [], []
            self.background_png = data  # the front end paints it under new strokes
            self.drawing_png = data     # Python has the drawing at once (no front end needed)
            self.result_png = b""
            self.status = f"loaded {name}: draw on it or press Generate"

    def save(self, path_drawing=None, path_result=None) -> list[Path]:
        """Write the drawing and/or the result as PNG files; returns the paths written."""
        written = []
        for path, image, what in ((path_drawing, self.drawing, "drawing"),
                                  (path_result, self.result, "result")):
            if path is None:
                continue
            if image is None:
                raise ValueError(f"{shown(path)}: there is no {what} to save yet")
            written.append(save_image_atomic(image, path))
        return written

    def clear(self) -> None:
        """Empty the canvas and the result, from Python (every view repaints)."""
        with self.hold_sync():
            self.strokes, self.undone = [], []
            self.background_png = self.drawing_png = self.result_png = b""
            self.status = "cleared: draw something"
