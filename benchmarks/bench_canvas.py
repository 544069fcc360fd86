"""Stroke end -> generated image painted on the page: the canvas's latency in a real browser (issue #26).

Starts JupyterLab, opens a notebook with the canvas in live mode and the shipped emoji generator,
and draws strokes with Playwright's mouse in headless Chromium. For each stroke the page records
the time from the pointer going up to the frame that paints the new result: the result image's
`src` changes, its `decode()` resolves, and the next requestAnimationFrame callback runs (that frame
shows it). Where the time goes is printed too: the page's PNG encode, the kernel's own time
(`generated in N ms`: the drawing's decode, preprocessing and the network), the round trip to
the new `src`, and decode-to-frame; and the widget messages' bytes per stroke, up and down, at
the last stroke (the drawing grows: strokes repeat over 16 rows). Needs Debian's chromium at
/usr/bin/chromium (`make browser`).

    .venv/bin/python benchmarks/bench_canvas.py --strokes 60
    .venv/bin/python benchmarks/bench_canvas.py --strokes 30 --segments 55   # ~330 points a stroke: a heavy drawing
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser harness the canvas test uses

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, draw, jupyterlab, open_notebook, run_in_kernel  # noqa: E402

NOTEBOOK = f'''\
import torch
from pix2pix_lib.canvas import DoodleCanvas
from pix2pix_lib.weights import load_generator
torch.set_num_threads(2)
G = load_generator({str(ROOT / "weights" / "openmoji_doodle_256.pt")!r})[0]
canvas = DoodleCanvas(G, size=256, pen_width=6, live=True)
statuses = []
canvas.observe(lambda change: statuses.append(change["new"]), "status")
canvas
'''

WATCH = """() => {
    const canvas = document.querySelector('.doodle-canvas canvas.doodle-drawing');
    const result = document.querySelector('.doodle-canvas img.doodle-result');
    window.__strokes = [];
    canvas.addEventListener('pointerup', () => { window.__up = performance.now(); });
    new MutationObserver(() => {
        if (window.__up === undefined) return;
        const up = window.__up, src = performance.now();
        window.__up = undefined;
        result.decode().then(() => requestAnimationFrame(() => {
            window.__strokes.push({ total: performance.now() - up, roundTrip: src - up, paint: performance.now() - src });
        }));
    }).observe(result, { attributes: true, attributeFilter: ['src'] });
}"""

ENCODE = """() => {  // what the page spends on one stroke's PNG (canvas.js's pngBytes)
    const c = document.createElement('canvas');
    c.width = c.height = 256;
    c.getContext('2d').drawImage(document.querySelector('.doodle-canvas canvas.doodle-drawing'), 0, 0, 256, 256);
    const start = performance.now();
    for (let i = 0; i < 20; i++) Uint8Array.from(atob(c.toDataURL('image/png').split(',')[1]), (ch) => ch.charCodeAt(0));
    return (performance.now() - start) / 20;
}"""


def count_frames(page) -> dict:
    """Bytes of widget messages (comm_msg frames) over the page's websockets, up and down."""
    counts = {"up": 0, "down": 0}

    def count(direction, payload):
        data = payload if isinstance(payload, bytes) else payload.encode()
        if b"comm_msg" in data:
            counts[direction] += len(data)

    page.on("websocket", lambda ws: (ws.on("framesent", lambda p: count("up", p)),
                                     ws.on("framereceived", lambda p: count("down", p))))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strokes", type=int, default=20)
    parser.add_argument("--segments", type=int, default=2, help="segments per stroke (~6 points each)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, jupyterlab(Path(tmp), NOTEBOOK) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        frames = count_frames(page)
        open_notebook(page, lab["base"])
        drawing = page.locator(".doodle-canvas canvas.doodle-drawing")
        drawing.wait_for(state="visible", timeout=60_000)
        drawing.scroll_into_view_if_needed()
        box = drawing.bounding_box()
        page.evaluate(WATCH)
        for i in range(args.strokes + 1):  # the first stroke warms up the kernel: not counted
            y = 30 + 14 * (i % 16)
            before = dict(frames)
            n = args.segments
            draw(page, box["x"], box["y"], [[(40 + 170 * k / n, y + 5 * (k % 2)) for k in range(n + 1)]])
            page.wait_for_function(f"() => window.__strokes.length > {i}", timeout=60_000)
            page.wait_for_timeout(100)  # the generation's last messages (status, busy) are counted with it
            last = {k: frames[k] - before[k] for k in frames}
        strokes = page.evaluate("() => window.__strokes")[1:]
        encode = page.evaluate(ENCODE)
        run_in_kernel(page, f"from pathlib import Path; Path({str(Path(tmp) / 's.txt')!r}).write_text('\\n'.join(statuses))")
        kernel = [float(m) for m in re.findall(r"generated \d+x\d+ in (\d+) ms", (Path(tmp) / "s.txt").read_text())][1:]
        browser.close()
    median = lambda key: statistics.median(s[key] for s in strokes)  # noqa: E731
    print(f"{len(strokes)} strokes of {args.segments} segments, shipped emoji generator (256 px), live mode, "
          "headless Chromium, JupyterLab")
    print("per stroke (ms): " + " ".join(f"{s['total']:.0f}" for s in strokes))
    print(f"where it goes (medians, ms): page PNG encode {encode:.1f}; kernel (decode + preprocess + network) "
          f"{statistics.median(kernel):.0f}; pointer up -> new src {median('roundTrip'):.0f}; "
          f"src -> decoded and painted {median('paint'):.0f}")
    print(f"widget messages at stroke {args.strokes}: {last['up'] / 1000:.1f} KB up, {last['down'] / 1000:.1f} KB down")
    print(f"stroke-to-painted-result median: {median('total'):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
