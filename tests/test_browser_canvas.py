"""The drawing canvas in real browsers: JupyterLab, Notebook 7 and the classic notebook with Colab's
widget stack (.venv-colab: ipywidgets 7, notebook 6.5), in headless Chromium via Playwright.

Each test draws with the mouse (or with synthetic pointer events where two pointers are needed),
and checks both ends: what the kernel holds (a helper cell dumps the canvas's traits to a file) and
what the page shows. Screenshots go to build/test-artifacts/. Waits end on the awaited state, with
generous limits, so a busy machine makes a test slower, not red.

Needs Debian's chromium at /usr/bin/chromium (`make browser` installs it; never a Playwright
browser download). Without it the tests are skipped, except under CI (env CI set), where they fail.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_lab import (CHROMIUM, CHROMIUM_FLAGS, draw, jupyter_server, open_notebook, run_all, run_in_kernel,
                         write_notebook)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"
DOODLE = ROOT / "pix2pix_lib" / "assets" / "doodles" / "smiley.png"

SETUP = '''\
import json
from pathlib import Path

import numpy as np
import torch

from pix2pix_lib.canvas import DoodleCanvas, image_from_png
from pix2pix_lib.models import build_generator

torch.manual_seed(0)
G = build_generator(image_size=64, ngf=8)  # tiny and untrained: the tests check the plumbing

def dump_state(path="state.json"):
    drawing = canvas.drawing
    Path(path).write_text(json.dumps({
        "strokes": canvas.strokes, "undone": len(canvas.undone), "status": canvas.status,
        "busy": canvas.busy, "result": len(canvas.result_png), "background": len(canvas.background_png),
        "dark_pixels": None if drawing is None else int((np.asarray(drawing.convert("L")) < 128).sum()),
        "requests": canvas.generate_requests, "key": getattr(canvas, "key", id(canvas)), "pen_width": canvas.pen_width,
        "model": canvas.model_name, "earlier_open": sum(c.comm is not None for c in earlier),
    }))

earlier = []  # canvases a test keeps to see them closed

'''
CANVAS = "canvas = DoodleCanvas(G, size=256, pen_width=6)\ncanvas"

FACE = [  # an outline, two eyes, a smile (canvas coordinates)
    [(128 + 90 * c, 128 + 90 * s) for c, s in
     [(1, 0), (0.7, 0.7), (0, 1), (-0.7, 0.7), (-1, 0), (-0.7, -0.7), (0, -1), (0.7, -0.7), (1, 0)]],
    [(95, 95), (95, 110)],
    [(160, 95), (160, 110)],
    [(85, 150), (128, 180), (170, 150)],
]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium (`make browser`, or apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["lab", "notebook"])  # the classic one: test_colab_like.py
def server(request, tmp_path_factory):
    """One JupyterLab and one Notebook 7 server for the module's tests."""
    _require_chromium()
    with jupyter_server(tmp_path_factory.mktemp(request.param), request.param) as running:
        yield running


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        finally:
            browser.close()


def open_canvas(page, server, name: str, cells) -> list:
    """Write and open a notebook, run it, and return the top-left corners of its canvases."""
    write_notebook(server["root"], name, cells)
    open_notebook(page, server["base"], name, server["frontend"])
    first = page.locator(".doodle-canvas canvas.doodle-drawing").first
    first.wait_for(state="visible", timeout=180_000)  # a kernel starting on a loaded machine
    first.scroll_into_view_if_needed()
    return corners(page)


def corners(page) -> list:
    boxes = [c.bounding_box() for c in page.locator(".doodle-canvas canvas.doodle-drawing").all()]
    return [(b["x"], b["y"]) for b in boxes]


def kernel_state(page, server, until=None, timeout: float = 90) -> dict:
    """The canvas's traits as the kernel has them; polled until `until(state)` holds.

    The kernel handles the page's widget updates between executions (they wait behind a running
    cell, ipykernel 6 and 7 alike), so a dump can fall between two updates of one action (a stroke's
    edit, then its PNG; a request, then its result): a state counts once two dumps in a row agree.
    The limit is generous (a loaded machine delays everything); a state that holds returns at once.
    """
    path = server["root"] / "state.json"
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        path.unlink(missing_ok=True)
        run_in_kernel(page, "dump_state()")
        state = json.loads(path.read_text())
        if state == previous and (until is None or until(state)) or time.monotonic() > deadline:
            return state
        previous = state
        time.sleep(0.1)


def screen_pixels(page) -> list[str]:
    """Every view's drawing as the screen shows it (a data URL per canvas)."""
    return page.evaluate("() => [...document.querySelectorAll('.doodle-canvas canvas.doodle-drawing')]"
                         ".map(c => c.toDataURL())")


def shown_as_python_has_it(page, state: dict) -> None:
    """Wait until the first view shows the drawing the kernel has (its dark pixels, within 3 %)."""
    page.wait_for_function("""(want) => {
        const c = document.querySelector('.doodle-canvas canvas.doodle-drawing');
        const small = document.createElement('canvas');
        small.width = small.height = 256;  // the model's size, whatever the screen's pixel ratio
        const ctx = small.getContext('2d');
        ctx.drawImage(c, 0, 0, 256, 256);
        const px = ctx.getImageData(0, 0, 256, 256).data;
        let dark = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark++;
        return Math.abs(dark - want) <= 0.03 * want + 20;
    }""", arg=state["dark_pixels"] or 0, timeout=10_000)


def pointer(page, kind: str, pointer_id: int, x: float, y: float) -> None:
    """A synthetic pointer event on the first canvas (canvas coordinates): a second finger needs one."""
    page.evaluate("""([kind, id, x, y]) => {
        const canvas = document.querySelector('.doodle-canvas canvas.doodle-drawing');
        const r = canvas.getBoundingClientRect();
        canvas.dispatchEvent(new PointerEvent(kind, { pointerId: id, pointerType: 'touch', isPrimary: id === 1,
            clientX: r.left + x * r.width / 256, clientY: r.top + y * r.height / 256, button: 0, buttons: 1,
            bubbles: true, cancelable: true }));
    }""", [kind, pointer_id, x, y])


def click(page, label: str, index: int = 0) -> None:
    page.locator(".doodle-canvas").nth(index).locator("button", has_text=label).click()


def test_draw_history_pointers_clear_open_and_download(server, page, tmp_path):
    x0, y0 = open_canvas(page, server, "core.ipynb", [SETUP, CANVAS])[0]
    draw(page, x0, y0, FACE)
    drawn = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 4)
    assert len(drawn["strokes"]) == 4 and drawn["dark_pixels"] > 500, drawn
    assert drawn["status"] == "4 strokes: press Generate", drawn  # the status follows the drawing

    click(page, "Generate")
    generated = kernel_state(page, server, until=lambda s: s["result"] and not s["busy"])
    page.wait_for_function("() => { const img = document.querySelector('.doodle-canvas img.doodle-result');"
                           " return img && !img.hidden && img.complete && img.naturalWidth === 64; }",
                           timeout=15_000)
    assert generated["status"].startswith("generated 64x64") and generated["requests"] == 1, generated
    assert page.locator(".doodle-canvas .doodle-placeholder").is_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".doodle-canvas").screenshot(path=str(ARTIFACTS / f"canvas-{server['frontend']}.png"))

    # Undo (button), redo and undo again (keyboard: the canvas has focus since the pen touched it).
    click(page, "Undo")
    undone = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 3)
    assert undone["undone"] == 1 and undone["dark_pixels"] < drawn["dark_pixels"], undone
    page.keyboard.press("Control+Shift+Z")
    redone = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 4)
    assert redone["undone"] == 0 and redone["dark_pixels"] == drawn["dark_pixels"], redone
    page.keyboard.press("Control+z")
    assert len(kernel_state(page, server, until=lambda s: len(s["strokes"]) == 3)["strokes"]) == 3
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length") == 2  # no cell undo

    # A resting finger lands first and stays: the finger that moves draws (from where it landed), the
    # resting one draws nothing, not even a dot. Then two fingers moving (a pinch) draw nothing.
    for kind, pid, x, y in [("pointerdown", 1, 30, 200), ("pointerdown", 2, 150, 40), ("pointermove", 1, 31, 201),
                            ("pointermove", 2, 170, 50), ("pointermove", 2, 200, 60), ("pointerup", 2, 200, 60),
                            ("pointerup", 1, 31, 201)]:
        pointer(page, kind, pid, x, y)
    for kind, pid, x, y in [("pointerdown", 3, 40, 40), ("pointerdown", 4, 200, 200), ("pointermove", 3, 60, 60),
                            ("pointermove", 4, 180, 180), ("pointermove", 3, 80, 80), ("pointerup", 3, 80, 80),
                            ("pointerup", 4, 180, 180)]:
        pointer(page, kind, pid, x, y)
    draw(page, *corners(page)[0], [[(20, 235), (60, 235)]])  # a mouse stroke after them: the kernel has all before
    fingers = kernel_state(page, server, until=lambda s: len(s["strokes"]) >= 5)
    rested, mouse = fingers["strokes"][3:5]
    assert len(fingers["strokes"]) == 5 and mouse["points"][0][1] > 230, fingers["strokes"][3:]  # no pinch stroke
    assert [len(rested["points"])] == [3] and min(x for x, _ in rested["points"]) > 140, rested  # the moving finger

    # Clear: the drawing, its history, the result and its "generated" status all go.
    click(page, "Clear")
    cleared = kernel_state(page, server, until=lambda s: not s["strokes"] and not s["result"])
    assert cleared["dark_pixels"] is None and cleared["status"].startswith("cleared"), cleared
    assert page.locator(".doodle-canvas img.doodle-result").is_hidden()
    assert page.locator(".doodle-canvas .doodle-placeholder").is_visible()

    # Open (the file picker), then a stroke on the opened doodle.
    page.locator(".doodle-canvas input.doodle-file").set_input_files(str(DOODLE))
    opened = kernel_state(page, server, until=lambda s: s["status"].startswith("opened"))
    assert opened["status"] == "opened smiley.png: draw on it or press Generate", opened
    assert opened["background"] and opened["dark_pixels"] > 300 and not opened["strokes"], opened
    draw(page, x0, y0, [[(12, 12), (12, 120)]])
    with_line = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 1)
    assert with_line["dark_pixels"] > opened["dark_pixels"] + 300, (opened, with_line)

    # Drag and drop the same file: the line goes, the doodle is back.
    page.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        const canvas = document.querySelector('.doodle-canvas canvas.doodle-drawing');
        canvas.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        canvas.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""", base64.b64encode(DOODLE.read_bytes()).decode())
    dropped = kernel_state(page, server, until=lambda s: s["status"].startswith("opened dropped.png"))
    assert not dropped["strokes"] and dropped["dark_pixels"] == opened["dark_pixels"], dropped

    # Download the drawing and the result.
    with page.expect_download() as download:
        click(page, "Drawing")
    drawing = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert download.value.suggested_filename == "doodle.png" and drawing.size == (256, 256)
    assert int((np.asarray(drawing.convert("L")) < 128).sum()) == dropped["dark_pixels"]
    click(page, "Generate")
    kernel_state(page, server, until=lambda s: s["result"] and not s["busy"])
    page.wait_for_function("() => !document.querySelector('.doodle-canvas img.doodle-result').hidden")
    with page.expect_download() as download:
        click(page, "Result")
    assert download.value.suggested_filename == "result.png"
    assert Image.open(io.BytesIO(Path(download.value.path()).read_bytes())).size == (64, 64)

    # load_image from Python replaces the drawing in the page too, also the same file twice.
    def load_and_draw(line):
        run_in_kernel(page, f"canvas.load_image({str(DOODLE)!r})")
        shown_as_python_has_it(page, kernel_state(page, server, until=lambda s: not s["strokes"]))
        if line:
            draw(page, x0, y0, [line])
        return kernel_state(page, server, until=lambda s: len(s["strokes"]) == (1 if line else 0))

    loaded = load_and_draw(None)
    assert loaded["result"] == 0 and loaded["status"] == "loaded smiley.png: draw on it or press Generate"
    first_line = load_and_draw([(12, 12), (12, 120)])
    second_line = load_and_draw([(244, 12), (244, 120)])
    line = first_line["dark_pixels"] - loaded["dark_pixels"]
    assert line > 300 and abs(second_line["dark_pixels"] - first_line["dark_pixels"]) < line / 2

    # Shift+Enter right after drawing reaches the notebook (only Ctrl+Z/Y stay with the canvas): it
    # re-runs the canvas's cell, which closes the canvas that cell made before.
    run_in_kernel(page, "first = canvas")
    draw(page, x0, y0, [[(200, 200), (210, 210)]])
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(2000)
    run_in_kernel(page, "Path('closed.json').write_text(json.dumps([first.comm is None, canvas.comm is None]))")
    assert json.loads((server["root"] / "closed.json").read_text()) == [True, False]


def test_views_reload_narrow_layout_and_dark_theme(server, page):
    developer_settings_before = developer_settings()
    x0, y0 = open_canvas(page, server, "views.ipynb", [SETUP, CANVAS, "canvas  # a second view"])[0]
    page.locator(".doodle-canvas").nth(1).wait_for(state="visible", timeout=30_000)
    draw(page, x0, y0, [FACE[0]])
    page.locator(".doodle-canvas canvas.doodle-drawing").nth(1).scroll_into_view_if_needed()
    x1, y1 = corners(page)[1]
    draw(page, x1, y1, [FACE[3]])  # a stroke in the second view
    both = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 2)
    assert len(both["strokes"]) == 2, both
    views = screen_pixels(page)
    assert len(views) == 2 and views[0] == views[1]  # one drawing, two views
    click(page, "Undo", index=1)
    kernel_state(page, server, until=lambda s: len(s["strokes"]) == 1)
    page.wait_for_function("() => { const c = [...document.querySelectorAll('.doodle-canvas canvas.doodle-drawing')]"
                           ".map(c => c.toDataURL()); return c[0] === c[1]; }", timeout=5_000)
    before_reload = screen_pixels(page)[0]
    assert before_reload != views[0]

    # Save and reload the page: the views come back from the kernel with the same drawing and history.
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(500)
    page.reload()
    page.locator(".doodle-canvas canvas.doodle-drawing").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_function("(want) => [...document.querySelectorAll('.doodle-canvas canvas.doodle-drawing')]"
                           ".every(c => c.toDataURL() === want)", arg=before_reload, timeout=10_000)
    click(page, "Redo")  # the undo history survived the reload too
    assert len(kernel_state(page, server, until=lambda s: len(s["strokes"]) == 2)["strokes"]) == 2

    # 480 px wide: every control and both panels stay on screen (they wrap, the canvas scales).
    page.set_viewport_size({"width": 480, "height": 900})
    page.wait_for_timeout(500)
    root = page.locator(".doodle-canvas").first
    root.scroll_into_view_if_needed()
    controls = root.locator(".doodle-toolbar > :not([hidden]), canvas.doodle-drawing, .doodle-result-box").all()
    assert len(controls) >= 14
    for control in controls:
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 480 + 0.5, (control.evaluate("e => e.outerHTML.slice(0, 80)"), box)
    root.screenshot(path=str(ARTIFACTS / f"canvas-480px-{server['frontend']}.png"))

    # A dark theme: dark buttons, readable text (WCAG AA: contrast 4.5:1 or more).
    page.set_viewport_size({"width": 1100, "height": 900})
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Dark' })")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=20_000)
    page.wait_for_timeout(500)
    colours = page.evaluate("""() => {
        const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
        const backdrop = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
        const root = document.querySelector('.doodle-canvas');
        const pairs = {};
        for (const e of [...root.querySelectorAll('.doodle-button:not(:disabled)'), root.querySelector('.doodle-status')])
            pairs[e.textContent.trim() || e.className] = [rgb(getComputedStyle(e).color).slice(0, 3), backdrop(e)];
        return pairs;
    }""")
    root.screenshot(path=str(ARTIFACTS / f"canvas-dark-{server['frontend']}.png"))
    assert len(colours) >= 7 and any("Generate" in what for what in colours), colours
    for what, (fg, bg) in colours.items():
        assert luminance(bg) < 0.1, (what, bg)  # dark, not the light defaults
        assert contrast(fg, bg) >= 4.5, (what, fg, bg)
    # The theme went to the test server's own settings folder, never to the developer's.
    theme = Path("@jupyterlab") / "apputils-extension" / "themes.jupyterlab-settings"
    page.wait_for_timeout(1000)  # the settings are saved a moment after the change
    assert "JupyterLab Dark" in (server["settings"] / theme).read_text()
    assert developer_settings_before == developer_settings(), "the developer's own JupyterLab settings changed"


def developer_settings() -> dict:
    """The developer's own JupyterLab settings files (path -> content), as the test process sees them."""
    from jupyter_core.paths import jupyter_config_dir

    folder = Path(os.environ.get("JUPYTERLAB_SETTINGS_DIR") or Path(jupyter_config_dir()) / "lab" / "user-settings")
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} if folder.is_dir() else {}


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour (0..255 channels)."""
    c = [v / 255 for v in rgb]
    c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def contrast(a, b) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_a_hidpi_screen_and_a_big_canvas(server):
    # devicePixelRatio 2: the screen canvas has 2x2 pixels per model pixel (soft strokes), while
    # Python still gets the model's size. size=1024 scales down to the cell instead of overflowing.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            hidpi = browser.new_page(viewport={"width": 900, "height": 900}, device_scale_factor=2)
            open_canvas(hidpi, server, "hidpi.ipynb", [SETUP, "canvas = DoodleCanvas(G, size=1024, pen_width=12)\ncanvas"])
            drawing = hidpi.locator(".doodle-canvas canvas.doodle-drawing").first
            backing = drawing.evaluate("c => [c.width, c.height, window.devicePixelRatio]")
            box = drawing.bounding_box()
            scale = box["width"] / 1024
            draw(hidpi, box["x"], box["y"], [[(100 * scale, 500 * scale), (900 * scale, 500 * scale)]])
            state = kernel_state(hidpi, server, until=lambda s: len(s["strokes"]) == 1)
            run_in_kernel(hidpi, "Path('size.json').write_text(json.dumps(list(canvas.drawing.size)))")
            size = json.loads((server["root"] / "size.json").read_text())
            panel = hidpi.locator(".doodle-canvas").first.bounding_box()
        finally:
            browser.close()
    assert backing == [2048, 2048, 2]
    assert box["width"] < 900 and panel["x"] + panel["width"] <= 900 + 0.5, (box, panel)  # fits the page
    assert size == [1024, 1024]
    xs = [x for x, _ in state["strokes"][0]["points"]]
    assert min(xs) < 150 and max(xs) > 850, xs  # points in model pixels, whatever the displayed size
    assert state["dark_pixels"] > 800 * 10, state  # a 12 px line across 800 model pixels


# ---- JupyterLab and the classic notebook with Colab's widget stack: re-runs, dead kernels, traffic, keys
COLAB_PYTHON = Path(os.environ.get("PIX2PIX_COLAB_PYTHON") or ROOT / ".venv-colab" / "bin" / "python")


@pytest.fixture(scope="module", params=["lab", "classic"])
def lab_or_classic(request, tmp_path_factory):
    """JupyterLab, and the classic notebook 6.5 with ipywidgets 7 running this checkout's library."""
    _require_chromium()
    python = sys.executable
    if request.param == "classic":
        if not COLAB_PYTHON.is_file():
            reason = f"{COLAB_PYTHON} is missing (`make test` builds .venv-colab)"
            pytest.fail(f"CI must run the classic notebook, but {reason}") if os.environ.get("CI") else pytest.skip(reason)
        python = str(COLAB_PYTHON)
    with jupyter_server(tmp_path_factory.mktemp(request.param), request.param, python=python, checkout=True) as running:
        yield running


@pytest.fixture
def any_page(lab_or_classic):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 900})
        finally:
            browser.close()


KERNEL = """(action) => {
    const kernel = window.Jupyter && Jupyter.notebook ? Jupyter.notebook.kernel  // classic
        : window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    if (action === 'restart') kernel.restart();
    else if (window.Jupyter && Jupyter.notebook) kernel.execute(action);  // no waiting: it may never answer
    else kernel.requestExecute({ code: action });
}"""
STATUS = ".doodle-canvas .doodle-status"


def gone_within(page, seconds: float) -> float:
    """Seconds until the canvas says its kernel is gone (at most `seconds`, else the wait fails)."""
    start = time.monotonic()
    page.wait_for_function("(s) => document.querySelector(s).textContent.includes('kernel restarted or stopped')",
                           arg=STATUS, timeout=seconds * 1000)
    return time.monotonic() - start


def test_a_rerun_or_a_dead_kernel_keeps_the_drawing(lab_or_classic, any_page):
    server, page = lab_or_classic, any_page
    x0, y0 = open_canvas(page, server, "rerun.ipynb", [SETUP, CANVAS])[0]
    draw(page, x0, y0, FACE[:3])
    first = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 3)
    click(page, "Undo")
    kernel_state(page, server, until=lambda s: s["undone"] == 1)
    run_in_kernel(page, "earlier.append(canvas)")

    # Shift+Enter right after a stroke re-runs the canvas's cell: the new canvas has the drawing,
    # its history and the old one is closed (the classic notebook sends no cell id: the page says so).
    # The classic notebook keeps its shortcuts away from a focused widget: there the cell runs by menu.
    draw(page, x0, y0, [[(30, 230), (90, 230)]])
    if server["frontend"] == "classic":
        page.evaluate("() => Jupyter.notebook.execute_cells([1])")
    else:
        page.keyboard.press("Shift+Enter")
    rerun = kernel_state(page, server, until=lambda s: s["key"] != first["key"] and not s["earlier_open"])
    assert len(rerun["strokes"]) == 3 and rerun["undone"] == 0 and rerun["strokes"][-1]["points"][0][1] > 225, rerun
    assert rerun["status"].startswith("kept the drawing"), rerun
    shown_as_python_has_it(page, rerun)
    assert page.locator(".doodle-canvas").count() == 1

    # Run All: the same; then Undo works on the history that came along.
    run_all(page)
    again = kernel_state(page, server, until=lambda s: s["key"] != rerun["key"] and len(s["strokes"]) == 3)
    click(page, "Undo")
    assert kernel_state(page, server, until=lambda s: s["undone"] == 1)["undone"] == 1, again

    # A restarted kernel: the canvas says so within seconds, greys out Generate, and a re-run keeps the drawing.
    page.evaluate(KERNEL, "restart")
    seconds = gone_within(page, 10)
    assert page.locator(".doodle-canvas button", has_text="Generate").is_disabled()
    assert "Run its cell again" in page.locator(STATUS).text_content()
    run_all(page)
    after_restart = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 2 and s["undone"] == 1)
    assert len(after_restart["strokes"]) == 2 and after_restart["dark_pixels"] > 300, after_restart
    page.wait_for_function("(s) => !document.querySelector(s).textContent.includes('kernel')", arg=STATUS)

    # A crashed kernel (killed): the same message.
    page.evaluate(KERNEL, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    crash_seconds = gone_within(page, 15)
    page.locator(".doodle-canvas").screenshot(path=str(ARTIFACTS / f"canvas-kernel-gone-{server['frontend']}.png"))
    assert seconds < 10 and crash_seconds < 15, (seconds, crash_seconds)


def frames_counter(page) -> dict:
    """Bytes of the widget messages (comm_msg) over the page's websockets, up and down, from now on."""
    counts = {"up": 0, "down": 0}

    def count(direction, payload):
        data = payload if isinstance(payload, bytes) else payload.encode()
        if b"comm_msg" in data or direction == "up" and b"buffer_paths" in data:
            counts[direction] += len(data)
        elif isinstance(payload, bytes) and direction == "up":  # the classic notebook's buffers travel alone
            counts[direction] += len(data)

    page.on("websocket", lambda ws: (ws.on("framesent", lambda p: count("up", p)),
                                     ws.on("framereceived", lambda p: count("down", p))))
    return counts


def test_a_stroke_costs_the_same_at_stroke_30_as_at_stroke_2(lab_or_classic, any_page):
    server, page = lab_or_classic, any_page
    counts = frames_counter(page)
    x0, y0 = open_canvas(page, server, "traffic.ipynb", [SETUP, CANVAS])[0]
    line = [(20 + 4 * i, 128 + (i % 2)) for i in range(55)]  # ~330 points: 30 strokes hold ~10,000
    per_stroke = []
    for i in range(30):
        before = dict(counts)
        draw(page, x0, y0, [line])
        if i in (1, 29):
            kernel_state(page, server, until=lambda s, n=i + 1: len(s["strokes"]) == n)
            page.wait_for_timeout(300)  # an echo on its way is counted with its stroke
            per_stroke.append({k: counts[k] - before[k] for k in counts})
    state = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 30)
    assert sum(len(s["points"]) for s in state["strokes"]) > 3000, "the strokes have too few points to tell"
    (up2, down2), (up30, down30) = [(c["up"], c["down"]) for c in per_stroke]
    assert up30 < up2 * 1.3 + 500 and down30 < down2 * 1.3 + 500, per_stroke  # not the whole list again
    assert up30 < 20_000, per_stroke


def test_keyboard_on_the_controls_and_the_canvas(lab_or_classic, any_page):
    server, page = lab_or_classic, any_page
    canvas = "canvas = DoodleCanvas(G, models={'small': build_generator(image_size=64, ngf=4)}, size=256, pen_width=6)\ncanvas"
    x0, y0 = open_canvas(page, server, "keys.ipynb", [SETUP, canvas, "1 + 1"])[0]
    active_cell = ("() => window.Jupyter && Jupyter.notebook ? Jupyter.notebook.get_selected_index()"
                   " : window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    root = page.locator(".doodle-canvas").first

    # Arrow keys move the width slider and the model picker, not the notebook's selected cell.
    root.locator("input.doodle-width").focus()
    cell = page.evaluate(active_cell)
    for key in ("ArrowRight", "ArrowRight", "ArrowUp", "ArrowLeft"):
        page.keyboard.press(key)
    assert kernel_state(page, server, until=lambda s: s["pen_width"] != 6)["pen_width"] == 8
    root.locator("select.doodle-model").focus()
    page.keyboard.press("ArrowDown")
    assert kernel_state(page, server, until=lambda s: s["model"] == "small")["model"] == "small"
    assert page.evaluate(active_cell) == cell

    # A button that greys itself out keeps the focus in the canvas: the next Ctrl+Z / Ctrl+Shift+Z works.
    draw(page, x0, y0, [FACE[1]])
    kernel_state(page, server, until=lambda s: len(s["strokes"]) == 1)
    click(page, "Undo")
    kernel_state(page, server, until=lambda s: not s["strokes"])
    assert page.evaluate("() => !!document.activeElement.closest('.doodle-canvas')")
    page.keyboard.press("Control+Shift+Z")
    assert len(kernel_state(page, server, until=lambda s: len(s["strokes"]) == 1)["strokes"]) == 1
    click(page, "Generate")
    kernel_state(page, server, until=lambda s: s["result"] and not s["busy"])
    page.keyboard.press("Control+z")
    assert kernel_state(page, server, until=lambda s: not s["strokes"])["strokes"] == []

    # Screen readers hear what the canvas is; the focus ring (a dashed outline) is not the active
    # tool's mark (a bar underneath).
    assert root.get_attribute("role") == "group" and root.get_attribute("aria-label")
    assert "draw" in root.locator("canvas.doodle-drawing").get_attribute("aria-label")
    root.focus()
    page.keyboard.press("Tab")  # onto the Pen button, the active tool
    page.keyboard.press("Tab")  # onto Eraser
    look = page.evaluate("""() => [...document.querySelectorAll('.doodle-canvas .doodle-button')].slice(0, 2).map((b) => {
        const s = getComputedStyle(b); return [b.textContent, s.outlineStyle, s.boxShadow, b.getAttribute('aria-pressed')]; })""")
    (_, pen_outline, pen_shadow, pen_pressed), (_, eraser_outline, eraser_shadow, _) = look
    assert pen_pressed == "true" and pen_outline == "none" and "inset" in pen_shadow, look
    assert eraser_outline == "dashed" and eraser_shadow == "none", look

    # In a wide cell the toolbar takes the cell's width: at most two rows here (three when it kept to
    # the drawing's width).
    bar, pen = root.locator(".doodle-toolbar").bounding_box(), root.locator(".doodle-button").first.bounding_box()
    assert bar["height"] < 2.6 * pen["height"], (bar, pen)
