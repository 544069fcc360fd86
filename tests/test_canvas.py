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


def test_the_canvas_colours_with_the_picked_models_card(monkeypatch):
    """A shipped model's card travels with it: the drawing is brought to its training sketches' style."""
    import pix2pix_lib.canvas as canvas_module
    from pix2pix_lib.weights import SHIPPED_SHOES, load_generator

    seen = []
    real = canvas_module.colorize
    monkeypatch.setattr(canvas_module, "colorize", lambda g, d, **kw: seen.append(kw["card"]) or real(g, d, **kw))
    w = DoodleCanvas(models=shipped_models(), size=128)
    assert {"emoji (shipped)", "shoes (shipped)", "cars (shipped)"} <= set(w.model_names)
    w.set_state({"model_name": "shoes (shipped)", "drawing_png": memoryview(drawing_png(128))})
    shoes, card = load_generator(SHIPPED_SHOES)
    assert w.card == card and card.sketch_style  # the card loaded with the weights
    result = w.generate()
    assert seen[-1] == card
    assert np.array_equal(np.asarray(result), np.asarray(real(shoes, w.drawing, card=card)))
    w.add_model("mine", shoes, card=None, use=True)  # handed in without a card: strokes as drawn
    w.generate()
    assert w.card is None and seen[-1] is None


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


def test_a_rerun_takes_over_the_drawing_history_and_model(tiny_g, monkeypatch):
    import pix2pix_lib.canvas as canvas_module

    other = build_generator(image_size=32, ngf=4)
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-take", "run-1"))
    old = DoodleCanvas(tiny_g, models={"other": other}, size=96)
    old.set_state({"edit": edit("add", stroke=STROKE, count=1), "drawing_png": memoryview(drawing_png(96))})
    old.set_state({"edit": edit("add", stroke=STROKE2, count=2)})
    old.set_state({"edit": edit("undo", count=1), "model_name": "other"})
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-take", "run-2"))  # Shift+Enter
    new = DoodleCanvas(tiny_g, models={"other": other}, size=96, live=True)  # not generating in the constructor
    assert old.comm is None and new.strokes == [STROKE] and new.undone == [STROKE2]
    assert new.drawing_png == old.drawing_png and new.model_name == "other" and new.generator is other
    assert new.status.startswith("kept the drawing") and new.result_png == b""
    new.set_state({"edit": edit("redo", count=2)})  # the history came along
    assert new.strokes == [STROKE, STROKE2] and new.undone == []
    monkeypatch.setattr(canvas_module, "_cell_run", lambda: ("cell-take", "run-3"))
    smaller = DoodleCanvas(tiny_g, size=64)  # another size: the strokes would not fit, a new drawing
    assert new.comm is None and smaller.strokes == [] and smaller.drawing_png == b"" and smaller.model_name == "model"


def test_a_canvas_the_page_saw_replaced_closes(tiny_g):
    w = DoodleCanvas(tiny_g)
    w.set_state({"retired": True})  # the classic notebook sends no cell id: the page tells
    assert w.comm is None and w.generator is None


STROKE2 = {"tool": "eraser", "width": 9, "points": [[3, 4]]}


def edit(op, **fields):
    return {"id": f"page-{next(_ids)}", "op": op, **fields}


_ids = iter(range(10**6))


def sent_states(w, monkeypatch) -> list:
    """Every state the canvas sends to the page from now on."""
    sent = []
    original = w._send
    monkeypatch.setattr(w, "_send", lambda msg, buffers=None: (sent.append(msg.get("state", {})), original(msg, buffers)))
    return sent


def test_a_stroke_travels_as_one_edit_and_no_list_comes_back(tiny_g, monkeypatch):
    w = DoodleCanvas(tiny_g, size=64)
    for i in range(60):
        w.set_state({"edit": edit("add", stroke=STROKE, count=i + 1)})
    sent = sent_states(w, monkeypatch)
    w.set_state({"edit": edit("add", stroke=STROKE2, count=61), "status": "61 strokes"})
    assert len(w.strokes) == 61 and w.strokes[-1] == STROKE2 and w.get_state()["strokes"][-1] == STROKE2
    assert not any("strokes" in state or "undone" in state for state in sent), sent  # no list goes back
    assert all(len(str(state)) < 300 for state in sent), sent  # what the page hears stays small (an echo)
    w.set_state({"edit": edit("undo", count=60)})
    w.set_state({"edit": edit("undo", count=59)})
    w.set_state({"edit": edit("redo", count=60)})
    assert len(w.strokes) == 60 and w.undone == [STROKE2]
    w.set_state({"edit": edit("add", stroke=STROKE, count=61)})
    assert w.undone == []  # a new stroke ends the redo history


def test_python_changes_and_conflicts_reach_every_view_as_a_replace(tiny_g, monkeypatch):
    w = DoodleCanvas(tiny_g, size=64)
    sent = sent_states(w, monkeypatch)
    w.strokes = [STROKE]
    assert sent[-1]["edit"]["op"] == "replace" and sent[-1]["edit"]["strokes"] == [STROKE]
    w.clear()  # the list looks unchanged to Python when it was empty already: the views still hear it
    w.clear()
    assert [s["edit"]["op"] for s in sent if "edit" in s][-2:] == ["replace", "replace"]
    w.set_state({"edit": edit("add", stroke=STROKE, count=5)})  # a page that missed a change
    assert sent[-1]["edit"] == {**sent[-1]["edit"], "op": "replace", "strokes": [STROKE], "count": 1}
    w.set_state({"edit": edit("add", stroke={"tool": "spray", "width": 4, "points": [[1, 1]]}, count=2)})
    assert w.strokes == [STROKE] and "could not take that stroke" in w.status
    assert sent[-1]["edit"]["op"] == "replace" and sent[-1]["edit"]["strokes"] == [STROKE]
    with pytest.raises(traitlets.TraitError, match="more than"):
        canvas_module_check([{"tool": "pen", "width": 4, "points": [[1, 2]] * 200_001}])
    big = {"tool": "pen", "width": 4, "points": [[1, 2]] * 150_000}
    w.set_state({"edit": edit("add", stroke=big, count=2)})
    w.set_state({"edit": edit("add", stroke=big, count=3)})  # 300,000 points in all: refused
    assert len(w.strokes) == 2 and "more than 200,000 points" in w.status


def canvas_module_check(strokes):
    from pix2pix_lib.canvas import _check_strokes
    return _check_strokes(strokes)


def test_generate_right_after_a_live_stroke_does_not_run_twice(tiny_g):
    runs = []
    w = DoodleCanvas(tiny_g, size=64, live=True, on_generate=lambda d, r: runs.append(1))
    w.set_state({"edit": edit("add", stroke=STROKE, count=1), "drawing_png": memoryview(drawing_png(64))})
    assert len(runs) == 1
    w.set_state({"generate_requests": 1, "busy": True})  # pressed right after the stroke
    assert len(runs) == 1 and w.busy is False and w.result_png
    paper = DoodleCanvas(tiny_g, size=64, live=True, mode="paper", on_generate=lambda d, r: runs.append(2))
    paper.set_state({"drawing_png": memoryview(drawing_png(64))})
    paper.set_state({"generate_requests": 1})  # no seed: each press is a new picture
    assert runs.count(2) == 2 and paper.status.endswith("(press again for another)")
    blank = DoodleCanvas(tiny_g, size=64)
    blank.set_state({"drawing_png": memoryview(png_bytes(Image.new("RGB", (64, 64), "white"))), "generate_requests": 1})
    assert blank.status == "the drawing is empty: draw something first"  # no pixel counts


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


def test_generate_again_after_the_generator_or_mode_changed_is_not_the_old_result(tiny_g):
    w = DoodleCanvas(tiny_g, size=64)
    w.set_state({"drawing_png": memoryview(drawing_png(64))})
    w.set_state({"generate_requests": 1})
    first = w.result_png
    torch.manual_seed(1)
    other = build_generator(image_size=32, ngf=4)  # other weights: another picture
    w.generator = other  # the same picker name, another network
    w.set_state({"generate_requests": 2})
    assert w.result_png and w.result_png != first  # generated again, not the old picture
    again = w.result_png
    w.set_state({"generate_requests": 3})
    assert w.result_png == again  # nothing changed: the shown result stands
