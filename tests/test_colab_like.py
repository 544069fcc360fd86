"""The course in a Colab-like environment: Colab's Python, torch and widget stack, the project from its wheel.

`make test` builds `.venv-colab` with the versions Colab's runtime ships since 2026-08-19
(googlecolab/backend-info: Python 3.13, torch 2.11 / torchvision 0.26, ipywidgets 7.7.1, traitlets
5.7.1, anywidget 0.9.21, notebook 6.5.7, ipykernel 6.17.1, IPython 7.34.0, numpy 2.1.3, pillow
11.3.0, matplotlib 3.10.0, opencv 5.0.0.93, scipy 1.16.3), installs this project there from its
wheel (not editable), and points PIX2PIX_COLAB_PYTHON at that interpreter. Here, in that environment:

1. `python -m pix2pix_lib notebooks DIR` into a fresh folder, then every notebook under nbval
   there (a pip user's course: no clone, the shipped weights from the wheel);
2. the canvas in a real browser in the classic notebook front end with ipywidgets 7.

Colab's own front end cannot run here; the README keeps a checklist for a manual Colab run.
Without PIX2PIX_COLAB_PYTHON the tests are skipped with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, draw, jupyter_server, open_notebook, write_notebook
from test_browser_canvas import CANVAS, FACE, SETUP, _require_chromium, click, kernel_state

ROOT = Path(__file__).resolve().parents[1]
COLAB_PYTHON = os.environ.get("PIX2PIX_COLAB_PYTHON", "")
COLAB_PYTHON_VERSION = "3.13"
COLAB_PINS = {"torch": "2.11.0", "torchvision": "0.26.0", "ipywidgets": "7.7.1", "traitlets": "5.7.1",
              "anywidget": "0.9.21", "notebook": "6.5.7", "ipykernel": "6.17.1", "ipython": "7.34.0",
              "numpy": "2.1.3", "pillow": "11.3.0", "matplotlib": "3.10.0", "opencv-python-headless": "5.0.0.93"}


def _require_colab_env() -> None:
    if COLAB_PYTHON and Path(COLAB_PYTHON).is_file():
        return
    reason = "PIX2PIX_COLAB_PYTHON is not set (`make test` builds .venv-colab and sets it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Colab-like tests, but {reason}")
    pytest.skip(reason)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_colab_environment_has_colabs_versions_and_the_wheel():
    _require_colab_env()
    code = ("import json, platform, importlib.metadata as m, pix2pix_lib; "
            "print(json.dumps({**{n: m.version(n) for n in %r}, 'file': pix2pix_lib.__file__, "
            "'python': platform.python_version()}))" % list(COLAB_PINS))
    found = json.loads(subprocess.run([COLAB_PYTHON, "-c", code], capture_output=True, text=True, check=True,
                                      cwd="/", env=_clean_env()).stdout)
    assert {n: found[n] for n in COLAB_PINS} == COLAB_PINS
    assert found["python"].rsplit(".", 1)[0] == COLAB_PYTHON_VERSION, found["python"]
    assert "site-packages" in found["file"] and not found["file"].startswith(str(ROOT / "pix2pix_lib"))  # the wheel


@pytest.mark.slow
def test_every_notebook_runs_from_the_wheel_in_a_fresh_folder(tmp_path):
    _require_colab_env()
    course = tmp_path / "my-course"
    subprocess.run([COLAB_PYTHON, "-m", "pix2pix_lib", "notebooks", str(course)], check=True, cwd=tmp_path,
                   env=_clean_env(), timeout=120)
    notebooks = sorted(p.name for p in (course / "notebooks").glob("*.ipynb"))
    assert notebooks == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    run = subprocess.run(
        [COLAB_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), "notebooks"],
        cwd=course, capture_output=True, text=True, timeout=1200,
        env=_clean_env(PIX2PIX_FAST="1", OMP_NUM_THREADS="1", PIX2PIX_DATA_DIR=str(tmp_path / "data")))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert (course / "runs").is_dir()  # the notebooks wrote their runs into the course folder


def test_canvas_in_the_classic_notebook_with_ipywidgets_7(tmp_path):
    _require_colab_env()
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with jupyter_server(tmp_path, "classic", python=COLAB_PYTHON) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            write_notebook(server["root"], "classic.ipynb", [SETUP, CANVAS])
            open_notebook(page, server["base"], "classic.ipynb", "classic")
            drawing = page.locator(".doodle-canvas canvas.doodle-drawing").first
            drawing.wait_for(state="visible", timeout=60_000)
            drawing.scroll_into_view_if_needed()
            box = drawing.bounding_box()
            draw(page, box["x"], box["y"], FACE)
            drawn = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 4)
            click(page, "Generate")
            generated = kernel_state(page, server, until=lambda s: s["result"] and not s["busy"])
            page.wait_for_function("() => { const img = document.querySelector('.doodle-canvas img.doodle-result');"
                                   " return img && !img.hidden && img.naturalWidth === 64; }", timeout=15_000)
            click(page, "Undo")
            undone = kernel_state(page, server, until=lambda s: len(s["strokes"]) == 3)
            width = page.locator(".doodle-canvas input.doodle-width").bounding_box()["width"]
            click(page, "Clear")
            cleared = kernel_state(page, server, until=lambda s: not s["strokes"] and not s["result"])
            page.locator(".doodle-canvas").screenshot(path=str(ROOT / "build" / "test-artifacts" / "canvas-classic.png"))
        finally:
            browser.close()
    assert drawn["dark_pixels"] > 500, drawn
    assert generated["status"].startswith("generated 64x64"), generated
    assert undone["dark_pixels"] < drawn["dark_pixels"] and undone["undone"] == 1, undone
    assert width <= 100, width  # the classic notebook's 100 %-wide range inputs do not stretch the slider
    assert cleared["status"].startswith("cleared"), cleared


def test_the_makefile_builds_what_these_tests_expect():
    # One list to change when Colab moves on: the Makefile's, checked against the pins above.
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    stack = dict(word.split("==") for word in makefile.split("COLAB_STACK :=", 1)[1].splitlines()[0].split())
    assert {n: stack[n] for n in COLAB_PINS} == COLAB_PINS
    assert f"COLAB_PYTHON := {COLAB_PYTHON_VERSION}\n" in makefile
