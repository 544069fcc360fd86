"""Stroke end -> generated image on the page: the canvas's latency in a real browser (issue #13).

Starts JupyterLab, opens a notebook with the canvas in live mode and the shipped generator, and
draws strokes with Playwright's mouse in headless Chromium. For each stroke the page records the
time from the pointer going up to the result image changing (a MutationObserver on its `src`).
Needs Debian's chromium at /usr/bin/chromium (`make browser`).

    .venv/bin/python benchmarks/bench_canvas.py --strokes 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser harness the canvas test uses

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, draw, jupyterlab, open_notebook  # noqa: E402

NOTEBOOK = f'''\
import torch
from pix2pix_lib.canvas import DoodleCanvas
from pix2pix_lib.weights import load_generator
torch.set_num_threads(2)
G, _ = load_generator({str(ROOT / "weights" / "openmoji_doodle_256.pt")!r})
canvas = DoodleCanvas(G, size=256, pen_width=6, live=True)
canvas
'''

WATCH = """() => {
    const canvas = document.querySelector('.doodle-canvas canvas.doodle-drawing');
    const result = document.querySelector('.doodle-canvas img.doodle-result');
    window.__latencies = [];
    canvas.addEventListener('pointerup', () => { window.__up = performance.now(); });
    new MutationObserver(() => {
        if (window.__up !== undefined) { window.__latencies.push(performance.now() - window.__up); window.__up = undefined; }
    }).observe(result, { attributes: true, attributeFilter: ['src'] });
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strokes", type=int, default=15)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, jupyterlab(Path(tmp), NOTEBOOK) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        open_notebook(page, lab["base"])
        drawing = page.locator(".doodle-canvas canvas.doodle-drawing")
        drawing.wait_for(state="visible", timeout=60_000)
        drawing.scroll_into_view_if_needed()
        box = drawing.bounding_box()
        page.evaluate(WATCH)
        for i in range(args.strokes + 1):  # the first stroke warms up the kernel: not counted
            y = 30 + 14 * (i % 16)
            draw(page, box["x"], box["y"], [[(40, y), (120, y + 5), (210, y)]])
            page.wait_for_function(f"() => window.__latencies.length > {i}", timeout=30_000)
        latencies = page.evaluate("() => window.__latencies")[1:]
        browser.close()
    print(f"{len(latencies)} strokes, shipped generator (256 px), live mode, headless Chromium, JupyterLab")
    print("per stroke (ms): " + " ".join(f"{v:.0f}" for v in latencies))
    print(f"stroke-to-result median: {statistics.median(latencies):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
