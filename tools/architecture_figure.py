"""Draw the paper's two networks as boxes, with the shapes the library's own networks produce.

    python tools/architecture_figure.py [--out results/architecture.png]

Every number in the figure comes from one forward pass through `build_generator(256, ngf=64)` and the
70x70 `PatchDiscriminator` (models.summary.layer_table), so the drawing cannot disagree with the
code; notebook 02 shows the committed PNG (results/ ships with the wheel); tests/test_course.py redraws it.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a clone

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from pix2pix_lib.models import PatchDiscriminator, build_generator  # noqa: E402
from pix2pix_lib.models.summary import layer_table  # noqa: E402

ENCODER, DECODER, DISC = "#9ecae1", "#fdae6b", "#a1d99b"


def network_rows() -> tuple[list, list]:
    """The paper's U-Net (256 px, ngf 64) and 70x70 PatchGAN, measured layer by layer."""
    with torch.no_grad():
        image = torch.zeros(1, 3, 256, 256)
        g_rows = layer_table(build_generator(image_size=256, ngf=64, norm="batch"), image)
        d_rows = layer_table(PatchDiscriminator(in_channels=6, ndf=64, n_layers=3, norm="batch"), image, image)
    return g_rows, d_rows


def shape(out_shape) -> str:
    _, c, h, w = out_shape
    return f"{c}×{h}×{w}"


def box(ax, x, y, w, h, colour, text, size=7):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=colour, edgecolor="black", lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def draw_unet(ax, rows) -> None:
    encoder = [r for r in rows if r.name.startswith("enc")]
    decoder = [r for r in rows if r.name.startswith("dec") or r.name == "to_image"]
    depth = len(encoder)
    width, gap = 1.2, 0.1
    level = lambda side: math.log2(256 / side)  # 0 at full size, depth at 1x1
    centre = {}
    for i, r in enumerate(encoder):  # down the left side of the U
        x, y = i * (width + gap), -level(r.out_shape[-1])
        box(ax, x, y - 0.4, width, 0.8, ENCODER, f"{r.name} {r.kind}\n{shape(r.out_shape)}", size=6.5)
        centre[r.name] = (x + width, y)
    for j, r in enumerate(decoder):  # up the right side
        x, y = (depth + j) * (width + gap), -level(r.out_shape[-1])
        box(ax, x, y - 0.4, width, 0.8, DECODER, f"{r.name} {r.kind}\n{shape(r.out_shape)}", size=6.5)
        skip = next((s for s in encoder if s.name in r.note), None)
        if skip is not None:  # the input of this block is the previous output concatenated with a skip
            sx, sy = centre[skip.name]
            ax.add_patch(FancyArrowPatch((sx, sy + 0.45), (x, sy + 0.45), arrowstyle="-|>", mutation_scale=8,
                                         linestyle="--", color="grey", lw=0.8))
            ax.text(x - 0.05, sy + 0.5, f"in {r.in_shape[1]} ch", ha="right", va="bottom", fontsize=5.5, color="grey")
    ax.text(0, 1.0, "sketch 3×256×256 →", fontsize=8, va="bottom")
    ax.text((2 * depth - 1) * (width + gap), 1.0, "→ colouring 3×256×256 (tanh)", fontsize=8, va="bottom", ha="center")
    ax.set(xlim=(-0.3, 2 * depth * (width + gap)), ylim=(-depth - 0.8, 1.6))
    total = sum(r.params for r in rows)
    ax.set_title(f"U-Net generator (256 px, ngf 64): {total:,} parameters. Blue: encoder Ck (4×4 conv, stride 2, "
                 "LeakyReLU 0.2); orange: decoder (CD = with dropout); dashed: skip connections, concatenated",
                 fontsize=8)
    ax.axis("off")


def draw_patchgan(ax, rows) -> None:
    width, gap = 1.6, 0.5
    box(ax, 0, 0, width, 1, "white", f"sketch + image\n{rows[0].in_shape[1]}×256×256")
    for i, r in enumerate(rows, start=1):
        note = r.note.split(",")
        box(ax, i * (width + gap), 0, width, 1, DISC, f"{r.name} {r.kind}\n{shape(r.out_shape)}\n{note[0]},{note[1]}",
            size=6.5)
        ax.add_patch(FancyArrowPatch(((i - 1) * (width + gap) + width, 0.5), (i * (width + gap), 0.5),
                                     arrowstyle="-|>", mutation_scale=8, color="black", lw=0.8))
    _, _, h, w = rows[-1].out_shape
    field = rows[-1].note.split("field ")[1].split(",")[0]
    ax.text((len(rows) + 1) * (width + gap) - gap + 0.1, 0.5, f"{h}×{w} verdicts:\none per {field}×{field} patch",
            fontsize=8, va="center")
    ax.set(xlim=(-0.2, (len(rows) + 2.6) * (width + gap)), ylim=(-0.3, 1.3))
    ax.set_title(f"70×70 PatchGAN discriminator: {sum(r.params for r in rows):,} parameters "
                 "(field: the input patch one output pixel sees)", fontsize=8)
    ax.axis("off")


def draw(out: Path) -> Path:
    g_rows, d_rows = network_rows()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.2), gridspec_kw={"height_ratios": [4.2, 1]})
    draw_unet(top, g_rows)
    draw_patchgan(bottom, d_rows)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "architecture.png")
    print(draw(parser.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
