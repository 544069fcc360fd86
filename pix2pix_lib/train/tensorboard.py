"""An optional TensorBoard log of a run (`train --tensorboard`): losses, validation metrics, sample grids.

    log = TensorBoardLog(out / "tensorboard")
    fit(config, data, out, on_epoch_end=log, on_progress=log)      # then: tensorboard --logdir <out>
                                                                    # (Colab: %tensorboard --logdir <out>)

It writes through torch.utils.tensorboard, which needs the tensorboard package (`pip install
tensorboard`; Colab has it). Without it the option is refused in one line before training starts.
The CSV logs and the notebook monitor stay as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .loop import EpochReport, ProgressReport


def require_tensorboard() -> None:
    """Raise a one-line error when torch.utils.tensorboard cannot be used (the tensorboard package is missing)."""
    try:
        import torch.utils.tensorboard  # noqa: F401 (its import fails without the tensorboard package)
    except ImportError as err:
        raise RuntimeError(f"--tensorboard needs the tensorboard package (pip install tensorboard): {err}") from None


class TensorBoardLog:
    """An `on_epoch_end` and `on_progress` callback writing a TensorBoard event file into `log_dir`.

    The folder is made at the first report, so a run that fails to start leaves none.
    """

    def __init__(self, log_dir: str | Path):
        require_tensorboard()
        self.log_dir, self.writer = Path(log_dir), None

    def __call__(self, report: EpochReport | ProgressReport) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.log_dir))
        step = report.step
        if isinstance(report, ProgressReport):  # the losses of the steps since the last report, and the speed
            for name, value in report.losses.items():
                self.writer.add_scalar(f"loss/{name}", value, step)
            self.writer.add_scalar("speed/images_per_s", report.images_per_s, step)
        else:
            for name, value in report.losses.items():
                self.writer.add_scalar(f"epoch_loss/{name}", value, step)
            for name, value in report.val.items():
                self.writer.add_scalar(f"val/{name}", value, step)
            self.writer.add_image("samples (sketch | generated | target)", np.asarray(report.samples), step,
                                  dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
