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

from pix2pix_lib.canvas import DoodleCanvas, image_from_png, png_bytes
from pix2pix_lib.models import build_generator


def drawing_png(size: int = 128) -> bytes:
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    d.ellipse([size // 6, size // 6, size * 5 // 6, size * 5 // 6], outline="black", width=3)
    d.line([(size // 3, size // 2), (size * 2 // 3, size // 2)], fill="black", width=3)
    return png_bytes(im)


@pytest.fixture
def tiny_g():
    torch.manual_seed(0)
    return build_generator(image_size=32, ngf=4)


def test_generate_request_from_the_front_end(tiny_g):
    seen = []
    w = DoodleCanvas(tiny_g, size=128, on_generate=lambda d, r: seen.append((d.size, r.size)))
    # the front end sends binary values as memoryview buffers
    w.set_state({"drawing_png": memoryview(drawing_png()), "strokes": 2})
    assert isinstance(w.drawing_png, bytes) and w.drawing.size == (128, 128)
    assert w.result_png == b""  # not live: nothing generated yet
    w.set_state({"generate_requests": 1})
    assert seen == [((128, 128), (32, 32))]
    result = Image.open(io.BytesIO(w.result_png))
    assert result.format == "PNG" and result.size == (32, 32)
    assert w.status.startswith("generated 32x32")
    state = w.get_state()
    assert state["result_png"] == w.result_png and state["strokes"] == 2 and state["size"] == 128
    assert {"drawing_png", "pen_width", "tool", "live", "generate_requests", "status"} <= set(state)
    assert "render" in str(state["_esm"])  # the JavaScript module travels with the widget


def test_live_mode_generates_after_each_stroke(tiny_g):
    w = DoodleCanvas(tiny_g, size=96, live=True)
    w.set_state({"drawing_png": memoryview(drawing_png(96)), "strokes": 1})
    assert w.result is not None and w.result.size == (32, 32)
    first = w.result_png
    w.set_state({"live": False})
    other = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(other).rectangle([20, 20, 70, 70], outline="black", width=3)
    w.set_state({"drawing_png": memoryview(png_bytes(other)), "strokes": 2})
    assert w.result_png == first and w.drawing.getpixel((20, 45)) == (0, 0, 0)


def test_empty_drawing_and_errors_become_status_lines(tiny_g):
    w = DoodleCanvas(tiny_g, size=64)
    w.set_state({"generate_requests": 1})
    assert w.status == "the drawing is empty: draw something first"
    w.set_state({"drawing_png": memoryview(png_bytes(Image.new("RGB", (64, 64), "white"))),
                 "generate_requests": 2})
    assert w.status.startswith("the drawing is empty") and w.result_png == b""
    w.set_state({"drawing_png": memoryview(b"\x89PNG broken"), "generate_requests": 3})
    assert w.status.startswith("error:") and w.last_error
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
    w.load_image(src)
    drawing = np.asarray(w.drawing.convert("L"))
    assert drawing.shape == (128, 128) and w.background_png == w.drawing_png and w.strokes == 0
    assert drawing[0, 0] == 255 and drawing[:32].min() == 255  # fitted and centred on white
    assert (drawing < 128).sum() > 100
    with pytest.raises(ValueError, match="no result"):
        w.save(tmp_path / "d.png", tmp_path / "r.png")
    assert w.generate() is not None
    paths = w.save(tmp_path / "d.png", tmp_path / "out" / "r.png")
    assert [p.name for p in paths] == ["d.png", "r.png"]
    assert Image.open(tmp_path / "d.png").size == (128, 128)
    assert Image.open(tmp_path / "out" / "r.png").size == (32, 32)
    requests = w.clear_requests
    w.clear()
    assert w.drawing is None and w.result is None and w.clear_requests == requests + 1


def test_image_from_png_composites_transparency():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(image_from_png(png_bytes(rgba))).min() == 255
    assert image_from_png(b"") is None
