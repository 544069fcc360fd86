"""How good is a generator? L1, PSNR and SSIM on a validation split (torchmetrics).

All metrics are computed on images in [0, 1] (not the networks' [-1, 1]), the usual convention,
so "L1 = 0.08" means "off by 8% of the intensity range on average".

Emoji and sketches are mostly white background, which flatters every metric: copying the sketch
already gets most pixels right. `l1_changed` is the L1 over only the pixels where sketch and target
differ (the pixels the generator must actually colour) - the number to watch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from .imaging import unnormalize_to_zero_to_one

METRICS = ("l1", "l1_changed", "psnr", "ssim")


def image_metrics(fake_b: torch.Tensor, real_b: torch.Tensor, real_a: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-batch sums of each metric (sums, so batches of any size average correctly).

    Inputs (N, 3, H, W) in [-1, 1]. Returns {"l1": sum over images of mean |fake - real|, ...,
    "changed_pixels": number of pixels where A and B differ, "l1_changed_sum": summed error there}.
    """
    fake, real, sketch = (unnormalize_to_zero_to_one(t.float()) for t in (fake_b, real_b, real_a))
    error = (fake - real).abs()  # (N, 3, H, W)
    changed = ((sketch - real).abs().amax(dim=1, keepdim=True) > 1 / 255).expand_as(error)
    psnr = peak_signal_noise_ratio(fake, real, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(fake, real, data_range=1.0, reduction="none")
    return {
        "l1": error.mean(dim=(1, 2, 3)).sum(),
        "psnr": psnr.clamp(max=100).sum(),  # identical images have infinite PSNR
        "ssim": ssim.sum(),
        "l1_changed_sum": (error * changed).sum(),
        "changed_pixels": changed.sum(),
        "count": torch.tensor(float(fake.shape[0])),
    }


@torch.no_grad()
def evaluate_predictions(predict: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[dict],
                         *, device: torch.device | str = "cpu", max_batches: int | None = None) -> dict[str, float]:
    """Mean L1, L1 on changed pixels, PSNR (dB) and SSIM of `predict(A)` against B over `batches`.

    `batches` yields dicts with "A" and "B" (a DataLoader over a paired dataset). `predict` is
    a generator in eval mode, or e.g. `lambda a: a` for the copy-the-sketch baseline.
    """
    totals: dict[str, float] = {}
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        for key, value in image_metrics(predict(real_a), real_b, real_a).items():
            totals[key] = totals.get(key, 0.0) + float(value)
    if not totals:
        raise ValueError("no validation batches to evaluate")
    count = totals.pop("count")
    return {
        "l1": totals["l1"] / count,
        "l1_changed": totals["l1_changed_sum"] / max(totals["changed_pixels"], 1.0),
        "psnr": totals["psnr"] / count,
        "ssim": totals["ssim"] / count,
    }


def evaluate_generator(generator: torch.nn.Module, batches: Iterable[dict], *, device: torch.device | str = "cpu",
                       max_batches: int | None = None, autocast_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Validation metrics of a generator, run in eval mode (dropout off, running batch-norm stats)."""
    was_training = generator.training
    generator.eval()
    device_type = torch.device(device).type

    def predict(a: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            return generator(a).float()

    try:
        return evaluate_predictions(predict, batches, device=device, max_batches=max_batches)
    finally:
        generator.train(was_training)
