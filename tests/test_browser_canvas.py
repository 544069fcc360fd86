"""The drawing canvas in a real browser: JupyterLab + headless Chromium, driven by Playwright.

The test draws strokes with the mouse, presses Generate, and checks both ends: the kernel got the
strokes (a notebook callback writes what arrived to a file) and the generated image appeared in
the page. A screenshot goes to build/test-artifacts/canvas.png.

Needs Debian's chromium at /usr/bin/chromium (`make browser` installs it; never a Playwright
browser download). Without it the test is skipped, except under CI (env CI set), where it fails.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, draw, jupyterlab, open_notebook

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "build" / "test-artifacts" / "canvas.png"
DOODLE = ROOT / "pix2pix_lib" / "assets" / "doodles" / "smiley.png"

NOTEBOOK_CODE = '''\
import json
from pathlib import Path

import numpy as np
import torch

from pix2pix_lib.canvas import DoodleCanvas
from pix2pix_lib.models import build_generator

torch.manual_seed(0)
G = build_generator(image_size=64, ngf=8)  # tiny and untrained: the test checks the plumbing
RECORD = Path("record.json")

def on_generate(drawing, result):
    gray = np.asarray(drawing.convert("L"))
    RECORD.write_text(json.dumps({
        "strokes": canvas.strokes, "requests": canvas.generate_requests,
        "dark_pixels": int((gray < 128).sum()), "drawing_size": list(drawing.size),
        "result_size": list(result.size),
    }))

canvas = DoodleCanvas(G, on_generate=on_generate, size=256, pen_width=6)
canvas
'''


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium (`make browser`, or apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test, but {reason}")
    pytest.skip(reason)


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free port, with its own settings, workspaces and notebook folder."""
    _require_chromium()
    with jupyterlab(tmp_path, NOTEBOOK_CODE) as server:
        yield server


def _wait_for_file(path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:  # caught mid-write
                pass
        time.sleep(0.2)
    raise AssertionError(f"the kernel never wrote {path.name}: Generate did not reach Python")


def run_in_kernel(page, code: str) -> None:
    """Execute `code` in the notebook's kernel, as a later cell would."""
    page.evaluate("""async (code) => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        await kernel.requestExecute({ code }).done;
    }""", code)


def generate_and_record(page, root: Path) -> dict:
    """Press Generate and return what the kernel's callback recorded."""
    (root / "record.json").unlink(missing_ok=True)
    page.locator(".doodle-canvas .doodle-generate").click()
    return _wait_for_file(root / "record.json", timeout=20)


def test_canvas_draw_and_generate_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            open_notebook(page, lab["base"])  # runs the cell through the app's own command
            drawing = page.locator(".doodle-canvas canvas.doodle-drawing")
            drawing.wait_for(state="visible", timeout=40_000)
            drawing.scroll_into_view_if_needed()
            box = drawing.bounding_box()
            x0, y0 = box["x"], box["y"]

            strokes = [  # a face: outline, two eyes, a smile (canvas coordinates)
                [(128 + 90 * c, 128 + 90 * s) for c, s in
                 [(1, 0), (0.7, 0.7), (0, 1), (-0.7, 0.7), (-1, 0), (-0.7, -0.7), (0, -1), (0.7, -0.7), (1, 0)]],
                [(95, 95), (95, 110)],
                [(160, 95), (160, 110)],
                [(85, 150), (128, 180), (170, 150)],
            ]
            draw(page, x0, y0, strokes)
            # Each stroke is sent when the pen lifts; wait until the last one reached the model.
            page.wait_for_timeout(300)
            page.locator(".doodle-canvas .doodle-generate").click()

            record = _wait_for_file(lab["root"] / "record.json", timeout=30)
            result = page.locator(".doodle-canvas img.doodle-result")
            page.wait_for_function(
                """() => { const img = document.querySelector('.doodle-canvas img.doodle-result');
                           return img && img.complete && img.naturalWidth > 0; }""", timeout=15_000)
            src = result.get_attribute("src")
            natural = result.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            status = page.locator(".doodle-canvas .doodle-status").inner_text()

            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".doodle-canvas").screenshot(path=str(ARTIFACT))

            # Undo removes the smile in the browser and tells the kernel; generate again.
            (lab["root"] / "record.json").unlink()
            page.locator(".doodle-canvas button", has_text="Undo").click()
            page.wait_for_timeout(300)
            page.locator(".doodle-canvas .doodle-generate").click()
            after_undo = _wait_for_file(lab["root"] / "record.json", timeout=20)

            # Loading a doodle from Python replaces the drawing in the page, also the second time
            # the same file is loaded (then background_png does not change; load_requests does).
            def load_doodle_and_draw(stroke):
                loaded = page.evaluate("() => Number(document.querySelector('.doodle-canvas').dataset.loaded || 0)")
                run_in_kernel(page, f"canvas.load_image({str(DOODLE)!r})")
                # Draw only once the page has put the doodle on screen (and dropped its strokes).
                page.wait_for_function("n => Number(document.querySelector('.doodle-canvas').dataset.loaded || 0) > n",
                                       arg=loaded, timeout=10_000)
                if stroke:
                    draw(page, x0, y0, [stroke])
                    page.wait_for_timeout(300)
                return generate_and_record(page, lab["root"])

            doodle_only = load_doodle_and_draw(None)
            doodle_and_line = load_doodle_and_draw([(12, 12), (12, 120)])
            reloaded_and_line = load_doodle_and_draw([(244, 12), (244, 120)])
        finally:
            browser.close()

    # The kernel received the strokes ...
    assert record["strokes"] == len(strokes), record
    assert record["requests"] == 1, record
    assert record["drawing_size"] == [256, 256], record
    assert record["dark_pixels"] > 500, record  # four strokes 6 px wide, not a blank canvas
    assert record["result_size"] == [64, 64], record
    # ... and the generated image came back to the page.
    assert src and (src.startswith("blob:") or src.startswith("data:image/")), src
    assert natural == [64, 64], natural
    assert status.startswith("generated 64x64"), status
    assert ARTIFACT.stat().st_size > 1000
    # Undo reached the kernel: one stroke fewer, fewer dark pixels, a second request.
    assert after_undo["strokes"] == len(strokes) - 1 and after_undo["requests"] == 2, after_undo
    assert after_undo["dark_pixels"] < record["dark_pixels"], (after_undo, record)
    # The reload dropped the first line: one line on the doodle each time, not two.
    line = doodle_and_line["dark_pixels"] - doodle_only["dark_pixels"]
    assert line > 300, (doodle_only, doodle_and_line)
    assert abs(reloaded_and_line["dark_pixels"] - doodle_and_line["dark_pixels"]) < line / 2, \
        (doodle_only, doodle_and_line, reloaded_and_line)
