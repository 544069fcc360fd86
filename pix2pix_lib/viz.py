"""Figures for the notebooks: image rows, PatchGAN views, loss curves, and the live training monitor."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter
import numpy as np
import torch
from PIL import Image, ImageDraw

from .imaging import GRID_PADDING, pil_to_tensor, tensor_to_pil
from .train import EpochReport, ProgressReport


# --- notebook figures (introduced in notebook 02; reused by training and evaluation) ----------
# Every function takes images in any of the forms the course handles: a PIL image, a tensor
# (3, H, W) or (1, 3, H, W) in [-1, 1], or a NumPy array (H, W) / (H, W, 3). Figures are made with
# pyplot, so a notebook shows them inline; each function also returns its Figure for saving.
# A cell that ends in one of these calls shows the figure twice; end it with `;` or assign it.

def as_display_array(image) -> np.ndarray:
    """Any course image -> a NumPy array that `imshow` draws with the right colours."""
    if isinstance(image, torch.Tensor):
        return np.asarray(tensor_to_pil(image))  # the one [-1, 1] -> pixels conversion
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (H, W, C), got an array of shape {array.shape}")
    return array


def _as_pil(image) -> Image.Image:
    array = as_display_array(image)
    if array.dtype != np.uint8:  # floats in [0, 1]
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def show_images(images, titles=None, *, ncols: int | None = None, size: float = 3.0,
                suptitle: str | None = None):
    """A row (or grid) of images with titles, axes hidden.

    Parameters:
        images:   a sequence of images (PIL, [-1, 1] tensors or arrays)
        titles:   one title per image, or None
        ncols:    images per row (default: all in one row)
        size:     inches per image
        suptitle: a title over the whole figure
    """
    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            array = as_display_array(images[k])
            ax.imshow(array, cmap="gray" if array.ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[k])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def credit(fig, text: str):
    """Write a credit line (e.g. `openmoji_attribution()`) small, under a figure; returns the figure."""
    fig.text(0.5, 0.0, text, ha="center", va="top", fontsize=8, color="dimgray")
    return fig


def draw_box(image, box: tuple[int, int, int, int], *, color="red", width: int = 2) -> Image.Image:
    """A copy of `image` (as RGB PIL) with the outline of `box` = (left, top, right, bottom) drawn.

    Right and bottom are exclusive, as in `patch_box`. Parts of the box outside the image
    (a PatchGAN edge patch reaching into the padding) are simply not drawn.
    """
    out = _as_pil(image).copy()
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        raise ValueError(f"empty box {box}")
    ImageDraw.Draw(out).rectangle([left, top, right - 1, bottom - 1], outline=color, width=width)
    return out


def draw_receptive_field(image, size: int, *, center: tuple[int, int] | None = None, color="red",
                         width: int = 2) -> Image.Image:
    """A copy of `image` with a `size` x `size` square (a receptive field) around `center`.

    Parameters:
        image:  the image to draw on (it is not modified)
        size:   side of the square in pixels, e.g. `receptive_field(D)` = 70
        center: (x, y) of the square's centre; default the centre of the image
        color:  outline colour (a PIL colour name or RGB tuple)
        width:  outline width in pixels (drawn inside the square)
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    pil = _as_pil(image)
    cx, cy = center if center is not None else (pil.width // 2, pil.height // 2)
    left, top = cx - size // 2, cy - size // 2
    return draw_box(pil, (left, top, left + size, top + size), color=color, width=width)


def _score_map(scores) -> np.ndarray:
    array = scores.detach().float().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    array = array.squeeze()
    if array.ndim != 2:
        raise ValueError(f"expected one score map (h, w) or (1, 1, h, w), got shape {np.shape(scores)}")
    return array


def show_patch_scores(image, scores, *, title: str | None = None, label: str = "D(A, B)",
                      vmin: float | None = 0.0, vmax: float | None = 1.0, cmap: str = "magma",
                      alpha: float = 0.55, size: float = 3.5):
    """The discriminator's output map as a heat map: image | map | map over the image.

    Parameters:
        image:  the image D judged (usually B, the real or generated colour image)
        scores: D's output map, (h, w) or (1, 1, h, w): one number per patch, e.g.
                `torch.sigmoid(logits)` for the probability that the patch is real
        label:  colour-bar label
        vmin, vmax: colour range (None: the map's own min and max)

    The overlay stretches the h x w map over the image. That is approximate: patches overlap
    and reach into the padding, so a cell's true patch is centred within a few pixels of where
    it is drawn (see `patch_box` for the exact square).
    """
    array = as_display_array(image)
    score = _score_map(scores)
    height, width = array.shape[:2]
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 0.8, size + (0.4 if title else 0)), layout="constrained")
    axes[0].imshow(array, cmap="gray" if array.ndim == 2 else None)
    axes[0].set_title("image")
    shown = axes[1].imshow(score, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    axes[1].set_title(f"output map {score.shape[0]}x{score.shape[1]}")
    axes[2].imshow(array, cmap="gray" if array.ndim == 2 else None)
    axes[2].imshow(score, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha, interpolation="nearest",
                   extent=(0, width, height, 0))
    axes[2].set_title("over the image")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=list(axes), label=label, fraction=0.025, pad=0.02)
    if title:
        fig.suptitle(title)
    return fig


def plot_loss_curves(curves: dict, *, ax=None, logy: bool = True, xlabel: str = "step",
                     ylabel: str = "loss"):
    """One line per named curve ({"U-Net": [...], "encoder-decoder": [...]}); returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), list(values), label=name)
    if logy:
        ax.set_yscale("log")
        for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_formatter(FormatStrFormatter("%.2g"))  # 0.3, not 3x10^-1
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def _l1(a, b) -> float:
    # Mean |a - b| in the networks' [-1, 1] units (like the L1 loss), measured on the 8-bit images shown.
    return float((pil_to_tensor(_as_pil(a)) - pil_to_tensor(_as_pil(b))).abs().mean())


def plot_skip_comparison(sketch, target, outputs: dict, *, curves: dict | None = None,
                         zoom: tuple[int, int, int, int] | None = None, size: float = 3.0):
    """Input | each generator's output | target, with L1 to the target in each title.

    Parameters:
        sketch, target: the input image A and the wanted image B
        outputs:        {"U-Net": image, "encoder-decoder": image, ...}
        curves:         optional {name: per-step losses}, drawn in a last panel
        zoom:           optional box (left, top, right, bottom): a second row magnifies that crop
                        of every image, where blur and lost edges are easiest to see

    Made for notebook 02 (why skip connections matter); works for any side-by-side comparison.
    """
    panels = [("input A", sketch)] + [(f"{name}\nL1 {_l1(img, target):.3f}", img) for name, img in outputs.items()]
    panels.append(("target B", target))
    nrows, ncols = (2 if zoom else 1), len(panels) + (1 if curves else 0)
    fig = plt.figure(figsize=(size * ncols, size * nrows + 0.3))
    grid = fig.add_gridspec(nrows, ncols)
    for k, (title, img) in enumerate(panels):
        pil = _as_pil(img)
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(draw_box(pil, zoom, color=(255, 140, 0), width=1) if zoom else pil)
        ax.set_title(title)
        ax.axis("off")
        if zoom:
            ax = fig.add_subplot(grid[1, k])
            ax.imshow(pil.crop(zoom), interpolation="nearest")
            ax.set_title("zoom")
            ax.axis("off")
    if curves:
        plot_loss_curves(curves, ax=fig.add_subplot(grid[:, -1]), ylabel="L1 loss")
    fig.tight_layout()
    return fig


# --- the live training monitor (notebook 03) -----------------------------------------------------
# A live view of a training run: loss curves, validation L1 and the latest samples.
#     monitor = TrainingMonitor()
#     fit(config, data, out, on_epoch_end=monitor, on_progress=monitor)
# After every epoch, and every ~30 s within one, the same output area is redrawn (no scroll of 100 plots). Outside a notebook
# it only keeps the figure; `monitor.figure` is there to save or show.
LOSS_CURVES = {  # log.csv column -> label
    "loss_D_real": "D on real pairs",
    "loss_D_fake": "D on generated pairs",
    "loss_G_gan": "G adversarial",
}


def plot_history(history: list[dict], *, baseline_l1: float | None = None, axes=None):
    """Two panels: the adversarial losses, and L1 (train, validation, copy-the-sketch baseline)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    ax_gan, ax_l1 = axes
    epochs = [row["epoch"] for row in history]
    for key, label in LOSS_CURVES.items():
        if any(key in row for row in history):
            ax_gan.plot(epochs, [row.get(key, float("nan")) for row in history], marker="o", label=label)
    ax_gan.axhline(0.6931, color="grey", lw=0.8, ls=":", label="log 2: D can't tell")
    ax_gan.set(title="adversarial losses", xlabel="epoch", ylabel="BCE")
    ax_gan.legend(fontsize=8)
    # Training L1 is in [-1, 1] units; validation metrics in [0, 1]: halve the former to compare.
    ax_l1.plot(epochs, [row["loss_G_L1"] / 2 for row in history], marker="o", label="train L1")
    ax_l1.plot(epochs, [row["val_l1"] for row in history], marker="o", label="validation L1")
    if baseline_l1 is not None:
        ax_l1.axhline(baseline_l1, color="grey", ls="--", label="copy the sketch")
    ax_l1.set(title="L1 distance to the target ([0, 1] units)", xlabel="epoch")
    ax_l1.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


class TrainingMonitor:
    """`on_epoch_end` and `on_progress` callback: redraws curves and a readable sample grid in one output.

        monitor = TrainingMonitor()
        fit(config, data, out, on_epoch_end=monitor, on_progress=monitor)

    A progress report (every ~30 s of training) draws the step curves and the samples as they are
    now, with the speed and the ETAs: the first picture within a minute, not at the first epoch's end.
    The grid shows its first `rows` pairs, large enough to see (>= 128 px a tile in a notebook).
    """

    def __init__(self, *, baseline_l1: float | None = None, show_samples: bool = True, rows: int = 4):
        self.baseline_l1, self.show_samples, self.rows = baseline_l1, show_samples, rows
        self.figure = None
        self._handle = None

    def __call__(self, report: EpochReport | ProgressReport) -> None:
        # Not interactive while we draw: the notebook shows the figure only through our display
        # handle. (`with`: the user's own pyplot figures still show themselves afterwards.)
        with plt.ioff():
            self._draw(report)
        try:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(self.figure, display_id=True)
            else:
                self._handle.update(self.figure)
        except ImportError:
            pass
        plt.close(self.figure)

    def _draw(self, report: EpochReport | ProgressReport) -> None:
        self.figure = plt.figure(figsize=(11, 3.6 + (0.3 + 1.3 * self.rows if self.show_samples else 0)))
        grid = self.figure.add_gridspec(2 if self.show_samples else 1, 2,
                                        height_ratios=[3.6, 0.3 + 1.3 * self.rows] if self.show_samples else None)
        axes = [self.figure.add_subplot(grid[0, 0]), self.figure.add_subplot(grid[0, 1])]
        plot_history(report.history, baseline_l1=self.baseline_l1, axes=axes)
        if isinstance(report, ProgressReport):
            plot_steps(report.steps, axes)
        if self.show_samples:
            ax = self.figure.add_subplot(grid[1, :])
            ax.imshow(first_rows(report.samples, self.rows))
            ax.set_title(_samples_title(report), fontsize=10)
            ax.axis("off")
        self.figure.tight_layout()


def plot_steps(steps: list[dict], axes) -> None:
    """The losses of steps.csv's windows (thin lines over fractional epochs) on `plot_history`'s panels."""
    if not steps:
        return
    ax_gan, ax_l1 = axes
    x = [row["epoch"] for row in steps]
    for key, label in LOSS_CURVES.items():
        if any(key in row for row in steps):
            ax_gan.plot(x, [row.get(key, float("nan")) for row in steps], lw=0.8, alpha=0.7, label=f"{label} (steps)")
    ax_l1.plot(x, [row["loss_G_L1"] / 2 for row in steps], lw=0.8, alpha=0.7, label="train L1 (steps)")
    for ax in axes:
        ax.legend(fontsize=7)


def first_rows(grid: Image.Image, rows: int) -> Image.Image:
    """The first `rows` pairs of a `make_sample_grid` grid (3 tiles a row, GRID_PADDING around each)."""
    tile = (grid.width - 4 * GRID_PADDING) // 3
    return grid.crop((0, 0, grid.width, min(grid.height, GRID_PADDING + rows * (tile + GRID_PADDING))))


def _samples_title(report: EpochReport | ProgressReport) -> str:
    if isinstance(report, EpochReport):
        return (f"epoch {report.epoch}/{report.total_epochs}: sketch | generated | target "
                f"(validation; L1 {report.val['l1']:.4f})")
    budget = "" if report.budget_left_s is None else f", time budget left {_minutes(report.budget_left_s)}"
    return (f"step {report.step} (epoch {report.epoch:.2f} of {report.total_epochs}): sketch | generated now | "
            f"target   {report.images_per_s:.1f} img/s, run ETA {_minutes(report.eta_s)}{budget}")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
