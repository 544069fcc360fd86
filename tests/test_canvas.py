"""DoodleCanvas without a browser: `set_state` is exactly what a front-end update calls.

The JavaScript itself is tested in a real browser by test_browser_canvas.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image, ImageDraw

from pix2pix_lib.canvas import DoodleCanvas, image_from_png, png_bytes, shipped_models
from pix2pix_lib.models import build_generator
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.weights import save_generator


def drawing_png(size: int = 128) -> bytes:
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    d.ellipse([size // 6, size // 6, size * 5 // 6, size * 5 // 6], outline="black", width=3)
    d.line([(size // 3, size // 2), (size * 2 // 3, size // 2)], fill="black", width=3)
    return png_bytes(im)


STROKE = {"tool": "pen", "width": 4, "points": [[10, 10], [50, 60]]}


@pytest.fixture
def tiny_g():
    torch.manual_seed(0)
    return build_generator(image_size=32, ngf=4)


def test_generate_request_from_the_front_end(tiny_g):
    seen = []
    w = DoodleCanvas(tiny_g, size=128, on_generate=lambda d, r: seen.append((d.size, r.size)))
    # the front end sends binary values as memoryview buffers
    w.set_state({"drawing_png": memoryview(drawing_png()), "strokes": [STROKE, STROKE]})
    assert isinstance(w.drawing_png, bytes) and w.drawing.size == (128, 128)
    assert w.result_png == b""  # not live: nothing generated yet
    w.set_state({"generate_requests": 1})
    assert seen == [((128, 128), (32, 32))]
    result = Image.open(io.BytesIO(w.result_png))
    assert result.format == "PNG" and result.size == (32, 32)
    assert w.status.startswith("generated 32x32")
    state = w.get_state()
    assert state["result_png"] == w.result_png and state["strokes"] == [STROKE, STROKE] and state["size"] == 128
    assert {"drawing_png", "pen_width", "tool", "live", "generate_requests", "status"} <= set(state)
    assert "render" in str(state["_esm"])  # the JavaScript module travels with the widget


def test_live_mode_generates_after_each_stroke(tiny_g):
    w = DoodleCanvas(tiny_g, size=96, live=True)
    w.set_state({"drawing_png": memoryview(drawing_png(96)), "strokes": [STROKE]})
    assert w.result is not None and w.result.size == (32, 32)
    first = w.result_png
    w.set_state({"live": False})
    other = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(other).rectangle([20, 20, 70, 70], outline="black", width=3)
    w.set_state({"drawing_png": memoryview(png_bytes(other)), "strokes": [STROKE, STROKE]})
    assert w.result_png == first and w.drawing.getpixel((20, 45)) == (0, 0, 0)


def test_empty_drawing_and_errors_become_status_lines(tiny_g):
    w = DoodleCanvas(tiny_g, size=64)
    w.set_state({"generate_requests": 1})
    assert w.status == "the drawing is empty: draw something first"
    w.set_state({"drawing_png": memoryview(png_bytes(Image.new("RGB", (64, 64), "white"))),
                 "generate_requests": 2})
    assert w.status.startswith("the drawing is empty") and w.result_png == b""
    w.set_state({"drawing_png": memoryview(b"\x89PNG broken"), "generate_requests": 3})
    assert w.status == "the canvas image: not an image of a format this reads (PNG)"  # one line, no traceback
    assert DoodleCanvas(None).generate() is None
    with pytest.raises(traitlets.TraitError, match="spray"):
        w.set_state({"tool": "spray"})  # only pen and eraser


def test_on_generate_failure_is_reported(tiny_g):
    def boom(drawing, result):
        raise RuntimeError("disk full")

    w = DoodleCanvas(tiny_g, size=64, on_generate=boom)
    w.set_state({"drawing_png": memoryview(drawing_png(64)), "generate_requests": 1})
    assert "disk full" in w.status and w.result_png  # the result is still shown


def test_load_image_save_and_clear(tiny_g, tmp_path):
    src = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent, wider than tall
    ImageDraw.Draw(src).rectangle([20, 20, 180, 80], outline=(0, 0, 0, 255), width=4)
    w = DoodleCanvas(tiny_g, size=128)
    w.set_state({"strokes": [STROKE], "undone": [STROKE], "drawing_png": memoryview(drawing_png())})
    w.generate()
    assert w.result_png
    w.load_image(src)
    drawing = np.asarray(w.drawing.convert("L"))
    assert drawing.shape == (128, 128) and w.background_png == w.drawing_png
    assert w.strokes == [] and w.undone == [] and w.result_png == b""  # a new drawing: no old history or result
    assert w.status.startswith("loaded the image")
    assert drawing[0, 0] == 255 and drawing[:32].min() == 255  # fitted and centred on white
    assert (drawing < 128).sum() > 100
    with pytest.raises(ValueError, match="no result"):
        w.save(tmp_path / "d.png", tmp_path / "r.png")
    assert w.generate() is not None
    paths = w.save(tmp_path / "d.png", tmp_path / "out" / "r.png")
    assert [p.name for p in paths] == ["d.png", "r.png"]
    assert Image.open(tmp_path / "d.png").size == (128, 128)
    assert Image.open(tmp_path / "out" / "r.png").size == (32, 32)
    w.set_state({"strokes": [STROKE]})
    w.clear()
    assert w.drawing is None and w.result is None and w.strokes == [] and w.background_png == b""
    assert w.status.startswith("cleared")


def test_image_from_png_composites_transparency():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(image_from_png(png_bytes(rgba))).min() == 255
    assert image_from_png(b"") is None


def test_model_picker_loads_files_when_picked_and_refuses_bad_ones(tiny_g, tmp_path):
    other = build_generator(image_size=64, ngf=4)
    path = tmp_path / "other.pt"
    save_generator(path, other, TrainConfig(image_size=64, ngf=4).to_dict())
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    w = DoodleCanvas(tiny_g, models={"other": path, "broken": broken}, size=64)
    assert w.model_names == ["model", "other", "broken"] and w.model_name == "model"
    assert isinstance(w._models["other"], type(path))  # not loaded before it is picked
    w.set_state({"drawing_png": memoryview(drawing_png(64))})
    assert w.generate().size == (32, 32)
    w.set_state({"model_name": "other"})  # the picker in the page
    assert w.result_png == b"" and w.status == "model: other; press Generate"  # no stale result
    assert w.generate().size == (64, 64)
    w.set_state({"model_name": "broken"})
    assert w.model_name == "other" and "broken" not in w.model_names  # back to the one that works
    assert w.status.startswith("could not use 'broken'") and "broken.pt" in w.status
    w.add_model("tiny again", tiny_g, use=True)
    assert w.generator is tiny_g and w.model_names[-1] == "tiny again"
    assert DoodleCanvas(models=shipped_models()).model_names == list(shipped_models())


def test_rerunning_a_cell_closes_the_canvases_its_earlier_run_made(tiny_g, monkeypatch):
    import pix2pix_lib.canvas as canvas_module

    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-1", "run-1"))
    first, second = DoodleCanvas(tiny_g), DoodleCanvas(tiny_g)  # two canvases in one run: both stay
    assert first.comm is not None and second.comm is not None
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-1", "run-2"))  # the cell runs again
    third = DoodleCanvas(tiny_g)
    assert first.comm is None and second.comm is None and first.generator is None  # closed, generators let go
    assert third.comm is not None and third.generator is tiny_g
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-2", "run-3"))
    fourth = DoodleCanvas(tiny_g)
    assert third.comm is not None and fourth.comm is not None  # another cell: both stay
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: None)
    DoodleCanvas(tiny_g)  # outside a notebook: nothing to tell apart, nothing closed
    assert fourth.comm is not None


def test_bad_front_end_values_are_refused(tiny_g):
    w = DoodleCanvas(tiny_g, size=64)
    for bad in ([{"tool": "pen", "width": 4, "points": []}], [{"tool": "spray", "width": 4, "points": [[1, 2]]}],
                [{"tool": "pen", "width": 0, "points": [[1, 2]]}], [{"tool": "pen", "width": 4, "points": [[1, float("nan")]]}],
                [{"tool": "pen", "width": 4}]):
        with pytest.raises(traitlets.TraitError, match="stroke 0"):
            w.set_state({"strokes": bad})
    with pytest.raises(traitlets.TraitError, match="more than"):
        w.set_state({"strokes": [{"tool": "pen", "width": 4, "points": [[1, 2]] * 200_001}]})
    with pytest.raises(traitlets.TraitError):
        w.set_state({"pen_width": 0})
    with pytest.raises(traitlets.TraitError, match="no model 'shoes'"):
        w.model_name = "shoes"
    with pytest.raises(traitlets.TraitError, match="size is fixed"):
        w.size = 128
    assert w.strokes == [] and w.pen_width == 4 and w.model_name == "model" and w.size == 64


def test_generate_marks_the_canvas_busy_while_it_runs(tiny_g):
    seen = []
    w = DoodleCanvas(tiny_g, size=64, on_generate=lambda d, r: seen.append(("inside", w.busy)))
    w.observe(lambda change: seen.append(change["new"]), "busy")
    w.set_state({"drawing_png": memoryview(drawing_png(64))})
    assert w.generate() is not None
    assert seen == [True, ("inside", True), False] and w.busy is False and w.result_png


def test_text_fallback_says_what_to_do(tiny_g):
    bundle = DoodleCanvas(tiny_g, size=64)._repr_mimebundle_()
    text = bundle[0]["text/plain"] if isinstance(bundle, tuple) else bundle["text/plain"]
    assert "JupyterLab" in text and "load_image" in text and "object at 0x" not in text
    assert len(text) <= 110  # ipywidgets 7 (Colab's) cuts the text at 110 characters
