"""How good is a generator? L1, PSNR and SSIM on a validation split (torchmetrics).

All metrics are computed on images in [0, 1] (not the networks' [-1, 1]), the usual convention,
so "L1 = 0.08" means "off by 8% of the intensity range on average".

Emoji and sketches are mostly white background, which flatters every metric: copying the sketch
already gets most pixels right. `l1_changed` is the L1 over only the pixels where sketch and target
differ (the pixels the generator must actually colour) - the number to watch. `sharpness` is the
edge energy of the outputs relative to the targets' (1 = as sharp as the targets; below 1: blurry,
the classic symptom of an L1-only generator; above 1: noise or artefacts). `colourfulness` is the
same kind of ratio for chroma (max - min of R, G, B): below 1, greyer than the targets - L1 alone
averages plausible colours into brownish greys (paper section 4.3, Fig. 7).

FID and LPIPS (notebook 06, `evaluate` verb) compare images through pretrained networks. Their
weights are never downloaded here: each is used only when its file is already on disk (torch's hub
cache, or the path in $PIX2PIX_FID_WEIGHTS / $PIX2PIX_LPIPS_WEIGHTS); otherwise the metric is left
out of the numbers and `PerceptualMetrics.skipped` says why ("skipped: weights not found at <path>").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchmetrics.functional.image.lpips import _LPIPS
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from .imaging import unnormalize_to_zero_to_one
from .data.paired import PairedImageDataset
from .runtime import select_device
from .files import shown
from .weights import check_finite, check_record, load_generator, load_plain, load_state_exactly

EVALUATION_FORMAT = "pix2pix-evaluation/1"  # the report `evaluate --json` writes (and may replace)
METRICS = ("l1", "l1_changed", "psnr", "ssim", "sharpness", "colourfulness")
# Which way each metric is better: the one place that says it (tables, plots, the paper checks).
# sharpness and colourfulness are ratios to the target's: 1 is best, both below (blur, grey) and
# above (noise, garish colour) are worse.
BETTER = {"l1": "lower", "l1_changed": "lower", "psnr": "higher", "ssim": "higher", "fid": "lower",
          "lpips": "lower", "sharpness": "closer to 1", "colourfulness": "closer to 1"}


def is_better(metric: str, a: float, b: float) -> bool:
    """True when value `a` of `metric` is better than `b` (see BETTER)."""
    way = BETTER[metric]
    if way == "closer to 1":
        return abs(a - 1) < abs(b - 1)
    return a > b if way == "higher" else a < b


def badness(metric: str, value: float) -> float:
    """A number that is smaller the better `value` is: for picking the best of several."""
    way = BETTER[metric]
    return abs(value - 1) if way == "closer to 1" else (-value if way == "higher" else value)


def edge_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute horizontal + vertical difference per image: (N, C, H, W) -> (N,)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def chroma(x: torch.Tensor) -> torch.Tensor:
    """Mean chroma (max - min over R, G, B; 0 for greys) per image: (N, 3, H, W) -> (N,)."""
    return (x.amax(dim=1) - x.amin(dim=1)).mean(dim=(1, 2))


def image_metrics(fake_b: torch.Tensor, real_b: torch.Tensor, real_a: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-batch sums of each metric (sums, so batches of any size average correctly).

    Inputs (N, 3, H, W) in [-1, 1]. Returns {"l1": sum over images of mean |fake - real|, ...,
    "changed_pixels": number of pixels where A and B differ, "l1_changed_sum": summed error there,
    "edges_fake" / "edges_real": summed `edge_energy` of outputs and targets, "chroma_fake" /
    "chroma_real": summed `chroma`}.
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
        "edges_fake": edge_energy(fake).sum(),
        "edges_real": edge_energy(real).sum(),
        "chroma_fake": chroma(fake).sum(),
        "chroma_real": chroma(real).sum(),
        "count": torch.tensor(float(fake.shape[0])),
    }


@torch.no_grad()
def evaluate_predictions(predict: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[dict],
                         *, device: torch.device | str = "cpu", max_batches: int | None = None,
                         perceptual: "PerceptualMetrics | None" = None) -> dict[str, float]:
    """Mean L1, L1 on changed pixels, PSNR (dB), SSIM, sharpness and colourfulness of `predict(A)` vs B.

    `batches` yields dicts with "A" and "B" (a DataLoader over a paired dataset). `predict` is
    a generator in eval mode, or e.g. `lambda a: a` for the copy-the-sketch baseline.
    `perceptual` (optional) also sees every batch and adds "fid" and "lpips" when it could compute
    them (why one was not: `perceptual.skipped`). Every value is a number.
    """
    totals: dict[str, float] = {}
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        fake_b = predict(real_a)
        for key, value in image_metrics(fake_b, real_b, real_a).items():
            totals[key] = totals.get(key, 0.0) + float(value)
        if perceptual is not None:
            perceptual.update(fake_b, real_b)
    if not totals:
        raise ValueError("no validation batches to evaluate")
    count = totals.pop("count")
    result = {
        "l1": totals["l1"] / count,
        "l1_changed": totals["l1_changed_sum"] / max(totals["changed_pixels"], 1.0),
        "psnr": totals["psnr"] / count,
        "ssim": totals["ssim"] / count,
        "sharpness": totals["edges_fake"] / max(totals["edges_real"], 1e-12),
        "colourfulness": totals["chroma_fake"] / max(totals["chroma_real"], 1e-12),
    }
    if perceptual is not None:
        result |= perceptual.compute()
    return result


def evaluate_generator(generator: torch.nn.Module, batches: Iterable[dict], *, device: torch.device | str = "cpu",
                       max_batches: int | None = None, autocast_dtype: torch.dtype | None = None,
                       perceptual: "PerceptualMetrics | None" = None) -> dict[str, float]:
    """Validation metrics of a generator, run in eval mode (dropout off, running batch-norm stats)."""
    was_training = generator.training
    generator.eval()
    device_type = torch.device(device).type

    def predict(a: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            return generator(a).float()

    try:
        return evaluate_predictions(predict, batches, device=device, max_batches=max_batches, perceptual=perceptual)
    finally:
        generator.train(was_training)


# --- FID and LPIPS, only from weights already on disk ----------------------------------------------
# torchmetrics builds both from pretrained networks that it would otherwise fetch from the internet
# on first use (torch-fidelity's Inception for FID, torchvision's AlexNet for LPIPS). We look for
# the file first and hand its path over explicitly, so no code path here can start a download.
FID_WEIGHTS_ENV = "PIX2PIX_FID_WEIGHTS"
LPIPS_WEIGHTS_ENV = "PIX2PIX_LPIPS_WEIGHTS"
# The file names those libraries would download into torch's hub cache (`torch.hub.get_dir()`).
FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's FID Inception v3
LPIPS_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"                  # torchvision's ImageNet AlexNet


def perceptual_weights_path(metric: str) -> Path:
    """Where the weights of "fid" or "lpips" are looked for: $PIX2PIX_<METRIC>_WEIGHTS, else the hub cache."""
    env, name = {"fid": (FID_WEIGHTS_ENV, FID_WEIGHTS_FILE), "lpips": (LPIPS_WEIGHTS_ENV, LPIPS_WEIGHTS_FILE)}[metric]
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def build_fid(weights: str | Path | None = None, *, features: nn.Module | None = None):
    """torchmetrics' FID from a local Inception file -> (metric or None, status string).

    `features` replaces Inception by any module mapping (N, 3, H, W) floats in [0, 1] to (N, D)
    (tests use a tiny random one); then no weights file is needed.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if features is not None:
        return FrechetInceptionDistance(feature=features, normalize=True), "ok: custom feature extractor"
    path = Path(weights) if weights is not None else perceptual_weights_path("fid")
    if not path.is_file():
        return None, f"skipped: weights not found at {shown(path)}"
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics' Inception lives in this package)
    except ImportError:
        return None, "skipped: torch-fidelity is not installed (pip install torch-fidelity)"
    try:  # read once, as plain tensors (a pickle of objects, a truncated or foreign file: skipped)
        state = load_plain(path, "weights file")
        check_record(state, {"*": torch.Tensor}, path, "Inception weights file")
        check_finite(state, path)
    except ValueError as err:
        return None, f"skipped: {err}"
    # torch-fidelity opens its file with weights_only=False (pickled code would run), so it never
    # sees `path`, which could be swapped after our check: it gets our copy of the tensors just read,
    # in a private temporary folder (mode 0700) that only this user can write to.
    with tempfile.TemporaryDirectory(prefix="pix2pix-fid-") as private:
        torch.save(state, Path(private) / "inception.pth")
        try:
            metric = FrechetInceptionDistance(feature=2048, normalize=True,
                                              feature_extractor_weights_path=str(Path(private) / "inception.pth"))
        except RuntimeError as err:  # load_state_dict: missing, unexpected or mis-shaped keys
            why = str(err).splitlines()[0][:120]
            return None, f"skipped: {shown(path)}: not torch-fidelity's Inception weights ({why})"
    return metric, f"ok: {shown(path)}"


def build_lpips(weights: str | Path | None = None):
    """LPIPS (AlexNet backbone) from a local torchvision AlexNet file -> (network or None, status).

    The small linear heads ship inside torchmetrics; only the backbone is a separate file: a full
    AlexNet state dict or its `features.*` entries, read once as plain tensors that must fit and be sane.
    """
    # torchmetrics' public LPIPS class always asks torchvision for the pretrained backbone (a
    # download when missing); its inner module (_LPIPS) can start from a random backbone we fill in.
    path = Path(weights) if weights is not None else perceptual_weights_path("lpips")
    if not path.is_file():
        return None, f"skipped: weights not found at {shown(path)}"
    try:
        state = load_plain(path, "weights file")
    except ValueError as err:  # a pickle of objects, a truncated or foreign file
        return None, f"skipped: {err}"
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        return None, f"skipped: {shown(path)} is not a state dict of tensors"
    network = _LPIPS(pretrained=True, net="alex", pnet_rand=True)
    backbone = {}
    for name in network.net.state_dict():  # "slice2.3.weight" is torchvision's "features.3.weight"
        key = "features." + name.split(".", 1)[1]
        if key not in state:
            raise ValueError(f"{shown(path)}: not torchvision AlexNet weights (no {key!r})")
        backbone[name] = state[key]
    load_state_exactly(network.net, backbone, path, "AlexNet")
    return network.eval(), f"ok: {shown(path)}"


class PerceptualMetrics:
    """FID and LPIPS over a stream of (generated, target) batches, each only if its weights exist.

    Parameters:
        device:        where the networks run
        fid, lpips:    compute this metric at all (False: left out of the result)
        fid_weights:   Inception file (default: $PIX2PIX_FID_WEIGHTS or the hub cache)
        lpips_weights: AlexNet file (default: $PIX2PIX_LPIPS_WEIGHTS or the hub cache)
        fid_features:  a custom FID feature extractor instead of Inception (see `build_fid`)

    `status` says, per metric, "ok: <weights>" or "skipped: <why>"; `compute()` returns the values of
    those computed (numbers only), `skipped` why the others were not. FID over a few hundred images is biased upwards (it is defined
    for ~50k): compare FIDs of runs on the same split, never with published numbers.
    """

    def __init__(self, *, device: torch.device | str = "cpu", fid: bool = True, lpips: bool = True,
                 fid_weights: str | Path | None = None, lpips_weights: str | Path | None = None,
                 fid_features: nn.Module | None = None):
        self.device = torch.device(device)
        if self.device.type == "mps":  # FID keeps float64 sums, which Apple's GPUs do not have
            self.device = torch.device("cpu")
        self.status: dict[str, str] = {}
        self._fid = self._lpips = None
        if fid:
            self._fid, self.status["fid"] = build_fid(fid_weights, features=fid_features)
            if self._fid is not None:
                self._fid = self._fid.to(self.device)
        if lpips:
            self._lpips, self.status["lpips"] = build_lpips(lpips_weights)
            if self._lpips is not None:
                self._lpips = self._lpips.to(self.device)
        self._lpips_sum, self._count = 0.0, 0

    @torch.no_grad()
    def update(self, fake_b: torch.Tensor, real_b: torch.Tensor) -> None:
        """Add a batch: (N, 3, H, W) in [-1, 1], the networks' range."""
        fake = unnormalize_to_zero_to_one(fake_b.float()).to(self.device)  # (N, 3, H, W) in [0, 1]
        real = unnormalize_to_zero_to_one(real_b.float()).to(self.device)
        if self._fid is not None:
            self._fid.update(real, real=True)
            self._fid.update(fake, real=False)
        if self._lpips is not None:
            self._lpips_sum += float(self._lpips(fake, real, normalize=True).sum())  # (N, 1, 1, 1)
        self._count += fake.shape[0]

    @property
    def skipped(self) -> dict[str, str]:
        """{metric: "skipped: why"} for each metric that gets no number."""
        return {name: status for name, status in self.status.items() if status.startswith("skipped")}

    def compute(self) -> dict[str, float]:
        """The metrics that could be computed, as numbers (the others: `skipped`)."""
        for name in [n for n, status in self.status.items() if self._count < 2 and status.startswith("ok")]:
            self.status[name] = f"skipped: {name} needs at least 2 images, got {self._count}"
        values = {"fid": lambda: float(self._fid.compute()), "lpips": lambda: self._lpips_sum / self._count}
        return {name: values[name]() for name in self.status if name not in self.skipped}


# --- evaluating a weights file (the `evaluate` verb) -----------------------------------------------
def evaluate_weights(weights: str | Path, data: str | Path, *, split: str = "val", batch_size: int = 16,
                     max_images: int | None = None, device: str = "cpu", perceptual: bool = True,
                     fid_weights: str | Path | None = None, lpips_weights: str | Path | None = None,
                     num_workers: int = 0) -> dict:
    """Metrics of a generator weights file on one split of an A|B dataset, plus the copy-the-sketch baseline.

    The image size comes from the weights' config; the split is read at that size without jitter
    or flips. `max_images` evaluates that many pairs spread evenly over the split.
    """
    weights, data = Path(weights), Path(data)
    if not weights.is_file():
        raise FileNotFoundError(f"{shown(weights)}: no such weights file")
    if not (data / split).is_dir():
        raise FileNotFoundError(f"{shown(data / split)}: no such dataset folder (expected A|B images in "
                                f"<data>/{split}/; build the default one with `python -m pix2pix_lib build-openmoji`)")
    if batch_size < 1 or (max_images is not None and max_images < 1):
        raise ValueError(f"batch_size and max_images must be >= 1, got {batch_size} and {max_images}")
    device = select_device(device)
    generator, card = load_generator(weights, device=device)
    size = card.image_size
    dataset = PairedImageDataset(data, split, image_size=size, load_size=size, flip=False)
    total = len(dataset)
    if max_images is not None and max_images < total:
        picks = torch.linspace(0, total - 1, max_images).round().long().unique().tolist()
        dataset = Subset(dataset, picks)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)

    def perceptual_metrics():
        return PerceptualMetrics(device=device, fid_weights=fid_weights, lpips_weights=lpips_weights) if perceptual else None

    scorer, baseline_scorer = perceptual_metrics(), perceptual_metrics()
    metrics = evaluate_generator(generator, loader, device=device, perceptual=scorer)
    baseline = evaluate_predictions(lambda a: a, loader, device=device, perceptual=baseline_scorer)
    return {"format": EVALUATION_FORMAT, "weights": str(weights), "data": str(data), "split": split, "images": len(dataset),
            "image_size": size, "metrics": metrics, "baseline": baseline,
            "skipped": scorer.skipped if scorer is not None else {},
            "baseline_skipped": baseline_scorer.skipped if baseline_scorer is not None else {},
            "perceptual_status": scorer.status if scorer is not None else {},
            "device": str(device), "torch": torch.__version__}


def format_metrics_table(metrics: dict[str, float], baseline: dict[str, float] | None = None, *,
                         skipped: dict[str, str] | None = None) -> str:
    """A plain-text table: metric | generator | copy-the-sketch; skipped metrics ("-") and why, below it."""
    skipped = {k: v for k, v in (skipped or {}).items() if k not in metrics}

    def cell(values: dict, key) -> str:
        return f"{values[key]:.4f}" if key in values else "-"

    rows = [("metric", "generator", "copy-the-sketch")] if baseline is not None else [("metric", "generator")]
    for key in [*metrics, *skipped]:
        row = (key, cell(metrics, key))
        rows.append(row + (cell(baseline, key),) if baseline is not None else row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [f"{key}: {why}" for key, why in skipped.items()])


