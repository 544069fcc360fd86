"""The paper's ablations in miniature (notebook 05): which design choices matter, measured.

Isola et al. (2017) justify pix2pix with three ablations, repeated here at quick scale on the
OpenMoji line-art -> colour default:

    group       variants                                   paper
    loss        L1 only | cGAN only | L1 + cGAN            Fig. 4, Table 1
    generator   encoder-decoder (no skips) | U-Net         Fig. 5 (both with L1 + cGAN)
    patch       D sees 1x1 | 16x16 | 70x70 | 286x286       Fig. 6, Table 3

Each variant is a handful of `TrainConfig` overrides of one base config, so every run shares the
seed, the data and the budget (the number of training images seen). "L1 + cGAN", "U-Net" and
"70x70" are the same configuration (the base): it runs once and serves all three groups.

Each run is cached in `<out_dir>/<run>/result.json`: re-running skips finished runs (unless
`recompute`) and resumes an interrupted one from its checkpoint.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from .files import RefusedError, atomic_path, is_ours, mark_ours
from .config import TrainConfig, preset
from .imaging import tensor_to_pil
from .viz import credit_band
from .metrics import (
    HIGHER_IS_BETTER,
    PerceptualMetrics,
    evaluate_generator,
    evaluate_predictions,
)

# Training images each variant sees, sized so that the whole study takes about an hour on a 2-core
# CPU. The quick preset trains at ~34 images/s there (128 px, bf16; L1-only is faster with no D,
# the 1x1 D a little slower). The nine variants are 7 distinct runs (the base serves three
# groups): 3600 s / 7 runs ~ 510 s each, less ~40 s of loading and evaluation ~ 470 s x 34/s
# ~ 16,000. We take 15,000: ~3.7 passes over OpenMoji's 4,020 training pairs (4 epochs of 469
# steps of 8), enough for the variants to differ, far from converged (the paper trains 200 epochs).
BUDGET_IMAGES = 15_000
N_SAMPLES = 6  # validation sketches shown per variant (the same ones for every variant)
RESULTS_FORMAT = "pix2pix-ablations/1"
RUN_RESULT = "result.json"
SAMPLES = "samples.png"

GROUPS = {
    "loss": "Objective (paper Fig. 4, Table 1)",
    "generator": "Generator architecture (paper Fig. 5)",
    "patch": "Discriminator patch size (paper Fig. 6, Table 3)",
}


@dataclass(frozen=True)
class Variant:
    """One point of an ablation: a name, its group, and its overrides of the base config."""

    name: str
    group: str
    overrides: dict = field(default_factory=dict)
    note: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("L1 only", "loss", {"use_gan": False}, "no discriminator at all"),
    Variant("cGAN only", "loss", {"lambda_l1": 0.0}, "lambda = 0: the generator never sees the target"),
    Variant("L1 + cGAN", "loss", {}, "the paper's objective (lambda = 100)"),
    Variant("encoder-decoder", "generator", {"skips": False}, "U-Net without skip connections"),
    Variant("U-Net", "generator", {}, "the paper's generator"),
    Variant("1x1 (PixelGAN)", "patch", {"patch_size": 1}, "D judges single pixels: colour only"),
    Variant("16x16", "patch", {"patch_size": 16}),
    Variant("70x70", "patch", {"patch_size": 70}, "the paper's PatchGAN"),
    Variant("286x286 (ImageGAN)", "patch", {"patch_size": 286},
            "at 128 px input a 286 px receptive field covers the whole image (and more): "
            "an image-level discriminator, as 286 is at the paper's 256 px"),
)


def base_config(**overrides) -> TrainConfig:
    """The quick preset (128 px, half-width nets, batch 8, bf16) that every variant starts from.

    Per-epoch validation inside `fit` is capped (it only feeds the log); the final evaluation
    covers the whole validation split.
    """
    return preset("quick", max_val_batches=2, n_samples=N_SAMPLES).replace(**overrides)


# --- planning: variants -> distinct runs ------------------------------------------------------------
# Fields that change how fast a run goes but not what it computes: not part of a run's identity.
MACHINERY = ("device", "num_workers", "notes", "compile", "channels_last")


def config_key(config: TrainConfig) -> str:
    """A short hash of everything that decides a run's result (device and loader settings excluded)."""
    data = {k: v for k, v in config.to_dict().items() if k not in MACHINERY}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def plan_runs(variants, base: TrainConfig) -> list[dict]:
    """Group the variants by resulting config: [{"run", "key", "config", "variants": [names]}].

    Variants whose overrides give identical configs share one run, named after the first of them.
    """
    runs: dict[str, dict] = {}
    for v in variants:
        if v.group not in GROUPS:
            raise ValueError(f"variant {v.name!r}: unknown group {v.group!r} (choose from {sorted(GROUPS)})")
        config = base.replace(**v.overrides)
        key = config_key(config)
        if key not in runs:
            runs[key] = {"run": slugify(v.name), "key": key, "config": config, "variants": []}
        runs[key]["variants"].append(v.name)
    names = [r["run"] for r in runs.values()]
    if len(set(names)) != len(names) or len({v.name for v in variants}) != len(list(variants)):
        raise ValueError(f"variant names must be unique, got {[v.name for v in variants]}")
    return list(runs.values())


def budget_schedule(config: TrainConfig, n_train: int, budget_images: int) -> TrainConfig:
    """Epochs and steps per epoch so that a run sees `budget_images` training images (rounded up).

    As many whole passes as needed, each capped to an equal share of the steps; about the last third
    of the epochs (rounded down: 4 epochs -> 3 + 1) decays the learning rate, as in the quick preset (3 + 2).
    """
    if budget_images < 1:
        raise ValueError(f"budget_images must be >= 1, got {budget_images}")
    steps = math.ceil(budget_images / config.batch_size)
    steps_per_pass = max(1, n_train // config.batch_size)  # the loader drops the last partial batch
    epochs = math.ceil(steps / steps_per_pass)
    per_epoch = math.ceil(steps / epochs)
    constant = math.ceil(2 * epochs / 3)
    return config.replace(epochs=constant, epochs_decay=epochs - constant, max_steps_per_epoch=per_epoch)


# --- where and what ---------------------------------------------------------------------------------
def hardware_info(device: torch.device) -> dict:
    """CPU model, GPU name, threads and versions: what a reader needs to compare wall times."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"device": str(device), "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["summary"] = f"{info['gpu']} (CUDA {info['cuda']}), {cpu}, {os.cpu_count()} CPU cores"
    else:
        info["summary"] = f"{cpu}, {info['torch_threads']} torch threads ({os.cpu_count()} CPU cores), no GPU"
    return info


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _strip(images: list[Image.Image]) -> Image.Image:
    """Images side by side (all the same size)."""
    w, h = images[0].size
    out = Image.new("RGB", (w * len(images), h), "white")
    for i, im in enumerate(images):
        out.paste(im, (i * w, 0))
    return out


# --- the study --------------------------------------------------------------------------------------
def run_experiments(data_root: str | Path, out_dir: str | Path, *, base: TrainConfig | None = None,
                    budget_images: int = BUDGET_IMAGES, variants=None, recompute: bool = False,
                    progress: bool = True, results_path: str | Path | None = None, perceptual: bool = True,
                    max_val_images: int | None = None, grid_size: int = 96) -> dict:
    """Train and evaluate every variant; return (and write) the combined results.

    Parameters:
        data_root      -- A|B dataset folder with train/ and val/ (the OpenMoji default).
        out_dir        -- one sub-folder per distinct run (checkpoints, samples, result.json).
        base           -- the config every variant overrides (default: `base_config()`); its
                          device and num_workers apply to every run.
        budget_images  -- training images per run (see BUDGET_IMAGES).
        variants       -- the Variants to run (default: all of VARIANTS).
        recompute      -- retrain runs that already have a result.
        results_path   -- the combined JSON (default: <out_dir>/ablations.json); a PNG grid of
                          samples is written beside it (same name, .png).
        perceptual     -- add FID / LPIPS when their weights are on disk.
        max_val_images -- evaluate on this many validation pairs only (fast mode, tests).
        grid_size      -- side in px of one image in the PNG grid.
    """
    from .data.paired import PairedImageDataset
    from .generate import load_generator
    from .train import LAST_GENERATOR, make_datasets, select_device

    data_root, out_dir = Path(data_root), Path(out_dir)
    for split in ("train", "val"):
        if not (data_root / split).is_dir():
            raise FileNotFoundError(f"{data_root / split}: no such folder (expected an A|B dataset; build the "
                                    f"default with `python -m pix2pix_lib build-openmoji`)")
    base = base if base is not None else base_config()
    variants = list(variants if variants is not None else VARIANTS)
    device = select_device(base.device)
    results_path = Path(results_path) if results_path is not None else out_dir / "ablations.json"

    # Data: every variant reads the same pairs at the same size (jitter settings come from the base).
    train_set, _ = make_datasets(base, data_root)
    val_set = PairedImageDataset(data_root, "val", image_size=base.image_size, load_size=base.image_size, flip=False)
    eval_set = val_set
    if max_val_images is not None and max_val_images < len(val_set):
        eval_set = torch.utils.data.Subset(val_set, range(max_val_images))
    eval_loader = DataLoader(eval_set, batch_size=32, num_workers=0)
    picks = torch.linspace(0, len(val_set) - 1, min(N_SAMPLES, len(val_set))).round().long().unique().tolist()
    sample_a = torch.stack([val_set[i]["A"] for i in picks])  # (S, 3, H, W)
    sample_b = torch.stack([val_set[i]["B"] for i in picks])
    if base.num_workers > 0:
        # Decode every pair once here: forked loader workers inherit the in-memory cache.
        for i in range(len(train_set)):
            train_set.load_pair(i)
            if train_set.cache_full:
                break
    # Which data a cached run was trained on: its folder, its size, and its manifest (rebuilt data).
    manifest_file = data_root / "manifest.json"
    data_id = (f"{data_root.resolve()} train={len(train_set)} val={len(val_set)} manifest="
               + (hashlib.sha1(manifest_file.read_bytes()).hexdigest()[:12] if manifest_file.is_file() else "none"))

    def scorer():
        return PerceptualMetrics(device=device) if perceptual else None

    out_dir.mkdir(parents=True, exist_ok=True)
    _strip([tensor_to_pil(a) for a in sample_a]).save(out_dir / "sketches.png")
    _strip([tensor_to_pil(b) for b in sample_b]).save(out_dir / "targets.png")
    baseline = evaluate_predictions(lambda a: a, eval_loader, device=device, perceptual=scorer())

    run_results: dict[str, dict] = {}
    for run in plan_runs(variants, base):
        config = budget_schedule(run["config"], len(train_set), budget_images)
        run_dir = out_dir / run["run"]
        cached = _read_json(run_dir / RUN_RESULT)
        if (cached and not recompute and cached.get("key") == run["key"] and cached.get("data") == data_id
                and cached.get("budget_images") == budget_images and cached.get("val_images") == len(eval_set)):
            if progress:
                print(f"[{run['run']}] cached: {run_dir / RUN_RESULT}")
            run_results[run["run"]] = cached
            continue
        # An interrupted run of the same settings resumes from its checkpoint; anything else starts afresh.
        identity = f"{run['key']} budget={budget_images} data={data_id}"
        marker = run_dir / "run_key.txt"
        started = marker.read_text().strip() if marker.is_file() else None
        if run_dir.exists() and (recompute or cached is not None or started != identity):
            if not (is_ours(run_dir) or marker.is_file()):  # a folder of the user's, named like a variant
                raise RefusedError(f"{run_dir}: --out holds a folder named like the run {run['run']!r} that the "
                                   "experiments did not make; it is left as it is. Choose another --out")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        mark_ours(run_dir, "experiment run")
        marker.write_text(identity + "\n")
        if progress:
            print(f"[{run['run']}] training {', '.join(run['variants'])}: {config.total_epochs} epochs x "
                  f"{config.max_steps_per_epoch} steps x batch {config.batch_size} on {device}")
        from .train import fit

        start = time.perf_counter()
        history = fit(config, data_root, run_dir, resume="auto", progress=progress, datasets=(train_set, val_set))
        trained = time.perf_counter() - start
        generator, _ = load_generator(run_dir / LAST_GENERATOR, device=device)
        metrics = evaluate_generator(generator, eval_loader, device=device, perceptual=scorer())
        with torch.no_grad():
            fake = generator(sample_a.to(device)).float().cpu()  # (S, 3, H, W)
        _strip([tensor_to_pil(f) for f in fake]).save(run_dir / SAMPLES)
        steps = int(history[-1]["step"]) if history else 0
        result = {
            "run": run["run"], "key": run["key"], "data": data_id, "variants": run["variants"],
            "config": config.to_dict(), "budget_images": budget_images,
            "images_seen": steps * config.batch_size, "steps": steps,
            "epochs": config.total_epochs, "val_images": len(eval_set), "metrics": metrics,
            "train_seconds": round(sum(row["seconds"] for row in history), 2),
            "wall_seconds": round(time.perf_counter() - start, 2), "fit_seconds": round(trained, 2),
            "hardware": hardware_info(device), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        _write_json(run_dir / RUN_RESULT, result)
        run_results[run["run"]] = result
        if progress:
            print(f"[{run['run']}] " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))

    manifest = _read_json(data_root / "manifest.json") or {}
    first = next(iter(run_results.values()))
    rows = []
    for v in variants:
        run = next(r for r in run_results.values() if v.name in r["variants"])
        rows.append({
            "variant": v.name, "group": v.group, "overrides": v.overrides, "note": v.note, "run": run["run"],
            "shared_with": [n for n in run["variants"] if n != v.name], "metrics": run["metrics"],
            "images_seen": run["images_seen"], "steps": run["steps"], "train_seconds": run["train_seconds"],
            "wall_seconds": run["wall_seconds"], "samples": f"{run['run']}/{SAMPLES}",
        })
    results = {
        "format": RESULTS_FORMAT,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "budget_images": budget_images,
        # How the budget was spent (base_config below keeps the preset's own epochs).
        "schedule": {k: first["config"][k] for k in ("epochs", "epochs_decay", "max_steps_per_epoch", "batch_size")},
        "seed": base.seed,
        "base_config": base.to_dict(),
        "hardware": hardware_info(device),
        "torch": torch.__version__,
        "data": {"root": data_root.name, "train_pairs": len(train_set), "val_pairs": len(val_set),
                 "val_images_evaluated": len(eval_set), "rendered_size": manifest.get("size"),
                 "source": manifest.get("source", {}).get("package"),
                 "source_version": manifest.get("source", {}).get("version")},
        "distinct_runs": len(run_results),
        "total_wall_seconds": round(sum(r["wall_seconds"] for r in run_results.values()), 1),
        "baseline": baseline,
        "sample_files": [Path(val_set.files[i]).name for i in picks],
        "variants": rows,
    }
    _write_json(results_path, results)
    grid = ablation_grid(out_dir, results, size=grid_size)
    if manifest.get("attribution"):
        grid = credit_band(grid, manifest["attribution"])
    # 256 colours without dithering: a third of the bytes of full RGB, no visible change (flat emoji).
    grid.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        results_path.with_suffix(".png"), optimize=True)
    return results


# --- reading the results ----------------------------------------------------------------------------
def load_results(path: str | Path) -> dict:
    """The combined results file written by `run_experiments` (checked for its format tag)."""
    path = Path(path)
    data = _read_json(path)
    if data is None:
        raise FileNotFoundError(f"{path}: no readable results file (run `python -m pix2pix_lib experiments`)")
    if data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not an ablation results file (format {data.get('format')!r})")
    return data


def grid_rows(results: dict) -> list[tuple[str, str]]:
    """(label, sample file relative to the run folder) for each row of the grid, top to bottom."""
    rows = [("sketch", "sketches.png")]
    seen = set()
    for v in results["variants"]:
        if v["run"] in seen:
            continue
        seen.add(v["run"])
        rows.append((" = ".join([v["variant"], *v["shared_with"]]), v["samples"]))
    return rows + [("target", "targets.png")]


def ablation_grid(out_dir: str | Path, results: dict, *, size: int = 96) -> Image.Image:
    """One row per distinct run (sketches first, targets last), one column per validation sketch."""
    strips = []
    for _, name in grid_rows(results):
        strip = Image.open(Path(out_dir) / name).convert("RGB")
        n = strip.width // strip.height
        strips.append(strip.resize((n * size, size), Image.LANCZOS))
    grid = Image.new("RGB", (strips[0].width, size * len(strips)), "white")
    for i, strip in enumerate(strips):
        grid.paste(strip, (0, i * size))
    return grid


def plot_ablation_grid(grid: Image.Image | str | Path, results: dict, *, width: float = 9.0):
    """Show the sample grid with each row labelled by its variant(s). Returns the Figure."""
    import matplotlib.pyplot as plt

    grid = Image.open(grid) if isinstance(grid, (str, Path)) else grid
    labels = [label for label, _ in grid_rows(results)]
    row = grid.height / len(labels)
    fig, ax = plt.subplots(figsize=(width, width * grid.height / grid.width))
    ax.imshow(grid)
    ax.set_yticks([row * (i + 0.5) for i in range(len(labels))], labels)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig


def numeric_metrics(results: dict) -> list[str]:
    """Metric names that hold numbers for every variant (FID / LPIPS only when they were computed)."""
    names = list(results["variants"][0]["metrics"])
    return [m for m in names if all(isinstance(v["metrics"].get(m), (int, float)) for v in results["variants"])]


def results_markdown(results: dict) -> str:
    """The results as one Markdown table per group (arrows say which way is better)."""
    metrics = numeric_metrics(results)
    arrow = {m: {True: " ↑", False: " ↓"}.get(HIGHER_IS_BETTER.get(m), " (1 = target)") for m in metrics}
    lines = []
    for group, title in GROUPS.items():
        rows = [v for v in results["variants"] if v["group"] == group]
        if not rows:
            continue
        lines += [f"**{title}**", "", "| variant | " + " | ".join(m + arrow[m] for m in metrics) + " |",
                  "|---|" + "---:|" * len(metrics)]
        for v in rows:
            lines.append(f"| {v['variant']} | " + " | ".join(f"{v['metrics'][m]:.4f}" for m in metrics) + " |")
        base = results["baseline"]
        lines.append("| *copy the sketch* | " + " | ".join(
            f"*{base[m]:.4f}*" if isinstance(base.get(m), (int, float)) else "" for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_ablation_metrics(results: dict, metrics=("l1", "l1_changed", "psnr", "ssim", "sharpness", "colourfulness")):
    """Bar charts: one row per group, one column per metric; dashed line = copy-the-sketch baseline."""
    import matplotlib.pyplot as plt

    metrics = [m for m in metrics if m in numeric_metrics(results)]
    groups = [g for g in GROUPS if any(v["group"] == g for v in results["variants"])]
    fig, axes = plt.subplots(len(groups), len(metrics), figsize=(2.6 * len(metrics), 2.4 * len(groups)), squeeze=False)
    for r, group in enumerate(groups):
        rows = [v for v in results["variants"] if v["group"] == group]
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            values = [v["metrics"][metric] for v in rows]
            ax.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
            base = results["baseline"].get(metric)
            if isinstance(base, (int, float)):
                ax.axhline(base, color="gray", linestyle="--", linewidth=1)
            if metric in ("sharpness", "colourfulness"):
                ax.axhline(1.0, color="black", linewidth=0.8)
            low, high = min(values + [base] if isinstance(base, (int, float)) else values), max(values)
            pad = (high - low) * 0.25 or abs(high) * 0.05 or 0.01
            ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, high + pad)
            ax.set_xticks(range(len(rows)), [v["variant"] for v in rows], rotation=30, ha="right", fontsize=8)
            better = {True: " (higher better)", False: " (lower better)"}.get(HIGHER_IS_BETTER.get(metric), " (1 = target)")
            ax.set_title(metric + better, fontsize=9)
            if c == 0:
                ax.set_ylabel(group)
    fig.tight_layout()
    return fig


# What the paper reports, as comparisons our numbers can confirm or contradict. Each check:
# (group, the paper's claim, metric, variant that should be better, variant it should beat).
# "sharpness" and "colourfulness" count as better when higher here: the claims are about blur
# and greyness (L1 alone) and about what a 1x1 discriminator adds (colour, not sharpness).
PAPER_CLAIMS = (
    ("loss", "L1 alone gives blurry results", "sharpness", "L1 + cGAN", "L1 only"),
    ("loss", "cGAN alone is sharp(er than L1 alone)", "sharpness", "cGAN only", "L1 only"),
    ("loss", "L1 alone averages colours into greys; the cGAN restores colour", "colourfulness", "L1 + cGAN", "L1 only"),
    ("loss", "without L1 the output drifts from the target (artefacts)", "l1_changed", "L1 + cGAN", "cGAN only"),
    ("loss", "L1 + cGAN is the most realistic (FID)", "fid", "L1 + cGAN", "L1 only"),
    ("generator", "U-Net beats the encoder-decoder", "l1_changed", "U-Net", "encoder-decoder"),
    ("generator", "U-Net beats the encoder-decoder", "ssim", "U-Net", "encoder-decoder"),
    ("patch", "even a 1x1 PixelGAN adds colour over L1 alone", "colourfulness", "1x1 (PixelGAN)", "L1 only"),
    ("patch", "1x1 adds colour but not sharpness: larger patches are sharper", "sharpness", "70x70", "1x1 (PixelGAN)"),
    ("patch", "70x70 beats 16x16", "l1_changed", "70x70", "16x16"),
    ("patch", "70x70 beats the full-image 286x286", "l1_changed", "70x70", "286x286 (ImageGAN)"),
)


TIE = 0.01  # relative differences under 1% count as a tie: one seed cannot separate them


def paper_checks(results: dict) -> list[dict]:
    """Each of the paper's claims tested on our numbers: which variant is better, and by how much.

    Returns rows {"group", "claim", "metric", "expected", "ours", "agrees" (True / False; None for
    a tie under TIE or a missing number), "relative_difference"}. One seed and a short budget:
    differences of a few percent can be run-to-run noise, so read "agrees" with the difference.
    """
    values = {v["variant"]: v["metrics"] for v in results["variants"]}
    rows = []
    for group, claim, metric, better, worse in PAPER_CLAIMS:
        a, b = values.get(better, {}).get(metric), values.get(worse, {}).get(metric)
        row = {"group": group, "claim": claim, "metric": metric, "expected": f"{better} better than {worse}"}
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            missing = [n for n in (better, worse) if n not in values]
            why = (a if isinstance(a, str) else b if isinstance(b, str)
                   else f"{' and '.join(missing)} not run" if missing else f"no {metric} in these results")
            rows.append(row | {"ours": f"not measured ({why})", "agrees": None, "relative_difference": None})
            continue
        higher = HIGHER_IS_BETTER.get(metric, True)
        difference = (a - b) / abs(b) if b else math.inf
        agrees = None if abs(difference) < TIE else (a > b if higher else a < b)
        rows.append(row | {"ours": f"{better} {a:.4f} vs {worse} {b:.4f}", "agrees": agrees,
                           "relative_difference": difference})
    return rows


def verdict(check: dict) -> str:
    if check["agrees"] is not None:
        return {True: "✔ agrees", False: "✘ disagrees"}[check["agrees"]]
    return "≈ tie" if check["relative_difference"] is not None else "– not measured"


def checks_markdown(checks: list[dict]) -> str:
    lines = ["| group | paper says | metric | our numbers | difference | verdict |", "|---|---|---|---|---:|---|"]
    for c in checks:
        diff = f"{100 * c['relative_difference']:+.1f}%" if c["relative_difference"] is not None else ""
        lines.append(f"| {c['group']} | {c['claim']} | {c['metric']} | {c['ours']} | {diff} | {verdict(c)} |")
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------------------
def run_cli(args: argparse.Namespace) -> int:
    overrides = {"device": args.device}
    if args.num_workers is not None:
        overrides["num_workers"] = args.num_workers
    names = [n.strip() for n in args.variants.split(",")] if args.variants else None
    variants = VARIANTS
    if names:
        unknown = set(names) - {v.name for v in VARIANTS}
        if unknown:
            raise ValueError(f"unknown variants {sorted(unknown)}: choose from {[v.name for v in VARIANTS]}")
        variants = tuple(v for v in VARIANTS if v.name in names)
    results = run_experiments(args.data, args.out, base=base_config(**overrides), budget_images=args.budget_images,
                              variants=variants, recompute=args.recompute, progress=not args.quiet,
                              results_path=args.results, perceptual=not args.no_perceptual)
    print(results_markdown(results))
    print(checks_markdown(paper_checks(results)))
    print(f"{results['distinct_runs']} runs, {results['total_wall_seconds']:.0f} s on {results['hardware']['summary']}; "
          f"wrote {args.results} and {Path(args.results).with_suffix('.png')}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "experiments", help="the paper's ablations in miniature (loss, generator, patch size)",
        description="Train every ablation variant (L1 / cGAN / L1+cGAN, encoder-decoder / U-Net, PatchGAN "
                    "1/16/70/286) with the same seed and budget, evaluate each on the validation split, "
                    "and write the combined results (JSON + a PNG sample grid). Finished runs are cached "
                    "in --out and not retrained unless --recompute.")
    p.add_argument("--data", required=True, help="A|B dataset folder with train/ and val/ (e.g. data/openmoji)")
    p.add_argument("--out", default="runs/experiments", help="folder for the runs (default: runs/experiments)")
    p.add_argument("--results", default="results/ablations.json", help="combined results file (default: results/ablations.json)")
    p.add_argument("--budget-images", type=int, default=BUDGET_IMAGES,
                   help=f"training images per run (default {BUDGET_IMAGES:,}: ~1 h for all on a 2-core CPU)")
    p.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--recompute", action="store_true", help="retrain runs that are already cached")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default 0; try 4 on a GPU machine)")
    p.add_argument("--no-perceptual", action="store_true", help="leave FID and LPIPS out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_cli)


def group_summaries(results: dict) -> list[str]:
    """One computed sentence per group: which variant is best on each metric (or has the most of it)."""
    sentences = []
    metrics = numeric_metrics(results)
    for group, title in GROUPS.items():
        rows = [v for v in results["variants"] if v["group"] == group]
        if len(rows) < 2:
            continue
        parts = []
        for m in metrics:
            if m in ("sharpness", "colourfulness"):
                most = max(rows, key=lambda v: v["metrics"][m])
                parts.append(f"most {m} is **{most['variant']}** ({most['metrics'][m]:.2f})")
                continue
            pick = max if HIGHER_IS_BETTER.get(m, True) else min
            best = pick(rows, key=lambda v: v["metrics"][m])
            parts.append(f"best {m} is **{best['variant']}** ({best['metrics'][m]:.4f})")
        sentences.append(f"*{title}*: " + "; ".join(parts) + ".")
    return sentences
