"""A drawing canvas for notebooks: draw a doodle, press Generate, see the generator colour it.

An anywidget (JupyterLab, Notebook 7, VS Code, Colab). Its JavaScript (canvas.js, beside this file)
paints the strokes in the browser, so the pen stays smooth while the kernel is busy. Every view of
the canvas, and every reload of the page, shows the same drawing; undo/redo work from any of them.
Synced traits are the only channel between the two sides: `strokes`, `undone` (the drawing, {tool,
width, points} each, and what redo brings back: views start from them, then a change travels as one
`edit` {id, op: add|undo|redo|replace, ..., count}, so stroke 60 costs what stroke 1 does),
`background_png` (an opened doodle), `drawing_png` (JS -> Python: the drawing as a PNG after each
stroke), `generate_requests` (the Generate button), `result_png`, `status`, `busy`, `model_names` and
`model_name` (the picker), the controls `pen_width`, `eraser_width`, `tool`, `live` (generate after
every stroke), and `key`, `retired` (the canvas's name in the page; set when a re-run's canvas took
its place where no cell id comes, as in the classic notebook).
Without a front end (nbconvert, nbval, a script): `load_image` (or set `drawing_png`), `generate()`.
"""

from __future__ import annotations

import io
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable

import anywidget
import numpy as np
import traitlets
from PIL import Image, ImageOps

from .generate import DEFAULT_MODE, colorize
from .preprocess import is_number, load_gray
from .files import shown
from .imaging import open_rgb, save_image_atomic
from .weights import SHIPPED_MODELS, load_generator


# Serializer for the binary traits, as ipywidgets' Image widget has: the front end sends memoryviews.
BYTES = {"from_json": lambda value, widget: b"" if value is None else bytes(value)}


def png_bytes(image: Image.Image) -> bytes:
    """PIL image -> PNG bytes (what travels in the *_png traits); level 1: ~4x faster than 6, ~10 % bigger."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def image_from_png(data: bytes) -> Image.Image | None:
    """PNG bytes -> RGB image on white, or None. Only PNG is decoded: EPS bytes never reach Ghostscript."""
    return Image.fromarray(open_rgb(data, formats=("PNG",), name="the canvas image")) if data else None


def shipped_models() -> dict[str, Path]:
    """The generators that ship with the course, by the name the canvas's picker shows."""
    return {f"{name} (shipped)": path for name, path in SHIPPED_MODELS.items() if path.is_file()}


def _cell_run() -> tuple[str, str] | None:
    """(cell id, execution id) of the cell running now, or None (outside JupyterLab and Notebook 7,
    which send the cell's id with each execution; the request's own id tells one run from the next)."""
    try:
        from IPython import get_ipython
        parent = get_ipython().kernel.get_parent() or {}
    except Exception:  # noqa: BLE001 - no IPython, no kernel, an old ipykernel: no cell to tell apart
        return None
    cell = parent.get("metadata", {}).get("cellId")
    return (cell, parent.get("header", {}).get("msg_id", "")) if cell else None


MIN_SIZE, MAX_SIZE = 16, 2048  # canvas side in px
MAX_POINTS = 200_000  # points in all strokes together: beyond any drawing, before the messages get heavy
MAX_COORD = 1e6  # px: a pointer dragged far beyond a scaled-down canvas stays well inside


def _number_in(value, low: float, high: float) -> bool:
    return is_number(value) and low <= value <= high


def _check_strokes(strokes: list, points_before: int = 0) -> list:
    """The front end's strokes, checked: a bad one would stop every view from painting."""
    total = points_before
    for i, stroke in enumerate(strokes):
        points = stroke.get("points") if isinstance(stroke, dict) else None
        if (total := total + (len(points) if isinstance(points, list) else 0)) > MAX_POINTS:  # before each point
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
        card:        its GeneratorCard (load_generator's second value; None: strokes as drawn, no style)
        models:      more for the picker, name -> weights file (loaded with its card when first picked, e.g.
                     `shipped_models()`), (generator, card) or generator; with no `generator`, the first is used
        on_generate: called as on_generate(drawing, result) (PIL images) after each generation
        size:        canvas side in px (the drawing's PNG is size x size; the page scales it to fit)
        mode, seed:  passed to `colorize`: "eval" (DEFAULT_MODE) or "paper" (seed None: new each time)
        pen_width:   initial pen width in px (the eraser has its own, `eraser_width`)
        live:        regenerate after every stroke

    Re-running the cell that made a canvas (Shift+Enter, Run All) closes the canvas it made before
    (its generators do not pile up in the kernel); the new one takes over its drawing, history and model.
    """

    _esm = Path(__file__).with_name("canvas.js")
    _css = Path(__file__).with_name("canvas.css")

    size = traitlets.Int(256).tag(sync=True)
    strokes = traitlets.List(traitlets.Dict()).tag(sync=True)
    undone = traitlets.List(traitlets.Dict()).tag(sync=True)
    edit = traitlets.Dict().tag(sync=True)
    key = traitlets.Unicode().tag(sync=True)  # this canvas's name in the page (views of one canvas share a drawing)
    retired = traitlets.Bool(False).tag(sync=True)
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
    _generated_for = None  # what made the result shown (`_request`): Generate again would give the same
    _request = property(lambda self: (self.drawing_png, self.model_name, id(self._models.get(self.model_name)),
                                      getattr(self, "mode", None), getattr(self, "seed", None)))

    def __init__(self, generator=None, *, card=None, models: dict | None = None, on_generate: Callable | None = None,
                 size: int = 256, mode: str = DEFAULT_MODE, seed: int | None = None, pen_width: int = 4,
                 live: bool = False, **kwargs):
        choices = ({} if generator is None else {"model": (generator, card)}) | dict(models or {})
        self._models = choices  # name -> generator, or a weights file not loaded yet
        run = _cell_run()
        cell, execution = run or (None, None)
        last, made = DoodleCanvas._made_by_cell.get(cell, (execution, []))
        earlier = made if run is not None and last != execution else []  # an earlier run of this cell made these
        # The new canvas takes over the drawing, its history and the model (strokes are in the old size's px).
        old = next((c for c in reversed(earlier) if c.comm is not None and c.size == size), None)
        taken = {} if old is None else {n: getattr(old, n) for n in ("strokes", "undone", "background_png", "drawing_png")}
        taken |= {"model_name": old.model_name} if old is not None and old.model_name in choices else {}
        super().__init__(**{"size": size, "pen_width": pen_width, "live": live, "model_names": list(choices),
                            "model_name": next(iter(choices), ""), "key": uuid.uuid4().hex} | taken | kwargs)
        self.on_generate, self.mode, self.seed = on_generate, mode, seed
        self.last_error: str | None = None  # the traceback of the last failure (status shows one line)
        self.status = ("kept the drawing from this cell's last run: press Generate" if taken.get("drawing_png")
                       else "draw, then press Generate" if choices else "draw something")
        self._built = True
        if run is not None:  # canvases an earlier run of this cell made go; those of this run stay
            for old in earlier:
                old.close()
            DoodleCanvas._made_by_cell[cell] = (execution, [*(made if not earlier else []), self])

    def __repr__(self) -> str:  # shown where widgets cannot render (nbconvert, GitHub); ipywidgets 7 cuts at 110
        return "DoodleCanvas: to draw, open this in JupyterLab, Notebook 7, VS Code or Colab (or use load_image)"

    def close(self) -> None:
        """Close the widget (its views go) and let go of its generators."""
        self._models = {}
        super().close()

    @traitlets.observe("retired")
    def _on_retired(self, change) -> None:  # the page saw a re-run's canvas take its place (classic notebook)
        self.close()

    @traitlets.validate("size")
    def _check_size(self, proposal) -> int:
        if getattr(self, "_built", False):  # the views are built at this size
            raise traitlets.TraitError("size is fixed once the canvas exists: create a new DoodleCanvas(size=...)")
        if not MIN_SIZE <= (size := proposal["value"]) <= MAX_SIZE:
            raise traitlets.TraitError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
        return size

    _check_stroke_list = traitlets.validate("strokes", "undone")(lambda self, proposal: _check_strokes(proposal["value"]))
    @traitlets.validate("model_name")
    def _check_model_name(self, proposal) -> str:
        if (name := proposal["value"]) and name not in self._models:
            raise traitlets.TraitError(f"no model {name!r}: the canvas has {list(self._models)} (add_model adds one)")
        return name

    # ---- the drawing's history: every view holds it; a change travels as one edit
    @traitlets.observe("strokes", "undone")
    def _on_drawing_set(self, change) -> None:
        if getattr(self, "_built", False):  # set from Python (or by an old front end): every view repaints
            self._replace_drawing(self.strokes, self.undone)

    def _replace_drawing(self, strokes: list, undone: list) -> None:
        """Set the drawing and its history from Python: every view hears it, even when it looks unchanged."""
        self._keep(_check_strokes(strokes), _check_strokes(undone))
        self.edit = {"id": f"kernel-{uuid.uuid4().hex}", "op": "replace", "strokes": strokes, "undone": undone,
                     "count": len(strokes)}

    def _keep(self, strokes: list, undone: list) -> None:
        # Into traitlets' storage without a notification, which would send every view the whole drawing.
        self._trait_values["strokes"], self._trait_values["undone"] = strokes, undone

    @traitlets.observe("edit")
    def _on_edit(self, change) -> None:
        edit, strokes, undone = change["new"], list(self.strokes), list(self.undone)
        if str(edit.get("id", "")).startswith("kernel-"):
            return  # one of ours, on its way to the views
        try:  # the change the views made themselves
            if (op := edit.get("op")) == "add":
                points = sum(len(s["points"]) for s in strokes)
                strokes, undone = [*strokes, *_check_strokes([edit.get("stroke")], points)], []
            elif op in ("undo", "redo"):
                source, target = (strokes, undone) if op == "undo" else (undone, strokes)
                target.extend(source[-1:])
                del source[-1:]
            elif op == "replace":  # a view handing over a drawing (a re-run after a kernel restart)
                strokes, undone = _check_strokes(edit.get("strokes") or []), _check_strokes(edit.get("undone") or [])
            else:
                raise traitlets.TraitError(f"unknown edit {op!r}")
        except (traitlets.TraitError, TypeError, ValueError) as err:
            self.status = f"the canvas could not take that stroke: {err}"
            strokes, undone = self.strokes, self.undone
        self._keep(strokes, undone)
        if edit.get("count") != len(strokes):  # a refused stroke, two pages at once: the views get Python's
            self._replace_drawing(strokes, undone)

    # ---- the generator in use, and the picker
    def _chosen(self) -> tuple:
        """(generator, card) in use, a weights file loaded on first use; (None, None) when there is none."""
        chosen = self._models.get(self.model_name)
        if isinstance(chosen, (str, Path)):
            chosen = self._models[self.model_name] = load_generator(chosen)
        return chosen if isinstance(chosen, tuple) else (chosen, None)

    generator = property(lambda self: self._chosen()[0],
                         lambda self, g: self.add_model(self.model_name or "model", g, use=True),
                         doc="The generator in use (loaded from its file on first use), or None; set: use another.")
    card = property(lambda self: self._chosen()[1], doc="The GeneratorCard of the generator in use, or None.")

    def add_model(self, name: str, generator_or_path, *, card=None, use: bool = False) -> None:
        """Offer another generator (with its card) or weights file in the picker; `use` switches to it."""
        self._models[name] = generator_or_path if isinstance(generator_or_path, (str, Path, tuple)) \
            else (generator_or_path, card)
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

    # ---- what the front end sends: the Generate button, and in live mode each stroke's drawing
    @traitlets.observe("generate_requests", "drawing_png")
    def _on_request(self, change) -> None:
        done = self._generated_for == self._request and self.result_png
        if change["name"] == "drawing_png" and not (self.live and change["new"] and getattr(self, "_built", False)):
            return
        if done and (self.mode == "eval" or self.seed is not None):  # this very drawing is coloured already
            self.busy = False
        else:
            self.generate()

    # ---- the drawing and the result as images
    drawing = property(lambda self: image_from_png(self.drawing_png), doc="The drawing (RGB, size x size), or None.")
    result = property(lambda self: image_from_png(self.result_png), doc="The last generated image, or None.")

    def generate(self) -> Image.Image | None:
        """Colour the current drawing; shows the result beside it. Errors go to `status` (an observer's
        exception would be swallowed by the widget's message handler)."""
        with self.hold_sync():  # one message before, one after: fewer for the page to handle
            self.busy, self.status = True, "generating..."
        with self.hold_sync():
            try:  # the result, its status and busy off in one message
                return self._generate()
            finally:
                self.busy = False

    def _generate(self) -> Image.Image | None:
        try:
            generator, card = self._chosen()
        except Exception as err:  # noqa: BLE001 - a weights file that does not load: said, not raised
            self.last_error = traceback.format_exc()
            self.status = f"could not use {self.model_name!r}: {err}"
            return None
        if generator is None:
            self.status = "no generator: create the canvas with DoodleCanvas(generator)"
            return None
        try:
            start = time.perf_counter()
            if (drawing := self.drawing) is None:
                raise ValueError("the drawing is empty")
            result = colorize(generator, drawing, card=card, mode=self.mode, seed=self.seed)
            elapsed = time.perf_counter() - start
        except ValueError as err:  # the preprocessing's message (e.g. an empty drawing: its numbers go)
            self.status = "the drawing is empty: draw something first" if "empty" in str(err) else str(err)
            return None
        except Exception as err:  # noqa: BLE001 - shown to the person drawing, kept in last_error
            self.last_error = traceback.format_exc()
            self.status = f"error: {type(err).__name__}: {err}"
            return None
        self.result_png = png_bytes(result)
        self._generated_for = self._request
        again = " (press again for another)" if self.mode == "paper" and self.seed is None else ""
        self.status = f"generated {result.width}x{result.height} in {elapsed * 1000:.0f} ms{again}"
        if self.on_generate is not None:
            try:
                self.on_generate(drawing, result)
            except Exception as err:  # noqa: BLE001
                self.last_error = traceback.format_exc()
                self.status = f"on_generate failed: {type(err).__name__}: {err}"
        return result

    # ---- files
    def load_image(self, source) -> None:
        """Put a doodle (path, PIL image or array) on the canvas, fitted and centred on white; it replaces
        the drawing (strokes, undo history and the old result go), as Open does."""
        gray = Image.fromarray((load_gray(source) * 255).round().astype(np.uint8), mode="L")  # on white
        name = shown(Path(source).name) if isinstance(source, (str, Path)) else "the image"
        self._new_drawing(png_bytes(ImageOps.pad(gray, (self.size,) * 2, Image.LANCZOS, color=255).convert("RGB")),
                          f"loaded {name}: draw on it or press Generate")

    def save(self, path_drawing=None, path_result=None) -> list[Path]:
        """Write the drawing and/or the result as PNG files (both checked first); returns the paths written."""
        asked = [(path, image, what) for path, image, what in ((path_drawing, self.drawing, "drawing"),
                                                               (path_result, self.result, "result")) if path]
        for path, image, what in asked:
            if image is None:
                raise ValueError(f"{shown(path)}: there is no {what} to save yet")
        return [save_image_atomic(image, path) for path, image, _ in asked]

    def clear(self) -> None:
        """Empty the canvas and the result, from Python (every view repaints)."""
        self._new_drawing(b"", "cleared: draw something")

    def _new_drawing(self, png: bytes, status: str) -> None:
        with self.hold_sync():  # one message: the page never shows new strokes on an old doodle
            self._replace_drawing([], [])
            self.background_png = self.drawing_png = png  # painted under new strokes; Python has it at once
            self.result_png = b""
            self.status = status
