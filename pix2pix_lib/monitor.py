"""A live view of a training run for notebooks: loss curves, validation L1 and the latest samples.

    monitor = TrainingMonitor()
    fit(config, data, out, on_epoch_end=monitor)

After every epoch the same output area is redrawn (no scroll of 100 plots). Outside a notebook
it only keeps the figure; `monitor.figure` is there to save or show.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .train import EpochReport

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
    """`on_epoch_end` callback: redraws curves and the sample grid in one notebook output."""

    def __init__(self, *, baseline_l1: float | None = None, show_samples: bool = True):
        self.baseline_l1, self.show_samples = baseline_l1, show_samples
        self.figure = None
        self._handle = None

    def __call__(self, report: EpochReport) -> None:
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

    def _draw(self, report: EpochReport) -> None:
        self.figure = plt.figure(figsize=(11, 3.6 + (4.5 if self.show_samples else 0)))
        grid = self.figure.add_gridspec(2 if self.show_samples else 1, 2,
                                        height_ratios=[1, 1.3] if self.show_samples else None)
        plot_history(report.history, baseline_l1=self.baseline_l1,
                     axes=[self.figure.add_subplot(grid[0, 0]), self.figure.add_subplot(grid[0, 1])])
        if self.show_samples:
            ax = self.figure.add_subplot(grid[1, :])
            ax.imshow(report.samples)
            ax.set_title(f"epoch {report.epoch}/{report.total_epochs}: sketch | generated | target "
                         f"(validation; L1 {report.val['l1']:.4f})")
            ax.axis("off")
        self.figure.tight_layout()
