"""The paper's ablations in miniature (notebook 06): which design choices matter, measured.

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

import datetime
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from . import runs, train
from .files import (RefusedError, clear_ours, exclusive_lock, mark_ours, read_json, reading, shown,
                    write_json_atomic, write_text_atomic)
from .config import MACHINERY, TrainConfig, preset
from .data.loaders import make_datasets
from .data.paired import PairedImageDataset
from .imaging import tensor_to_pil
from .runs import LAST_GENERATOR, check_study_folder, is_experiment_run
from .runtime import hardware_info, select_device
from .weights import load_generator
from .imaging import credit_band, open_image, save_image_atomic
from .metrics import PerceptualMetrics, evaluate_generator, evaluate_predictions

# Training images each variant sees, sized so that the whole study takes about an hour on a 2-core
# CPU. The quick preset trains at ~34 images/s there (128 px, bf16; L1-only is faster with no D,
# the 1x1 D a little slower). The nine variants are 7 distinct runs (the base serves three
# groups): 3600 s / 7 runs ~ 510 s each, less ~40 s of loading and evaluation ~ 470 s x 34/s
# ~ 16,000. We take 15,000: ~3.7 passes over OpenMoji's 4,020 training pairs (4 epochs of 469
# steps of 8), enough for the variants to differ, far from converged (the paper trains 200 epochs).
log = logging.getLogger(__name__)
BUDGET_IMAGES = 15_000
N_SAMPLES = 6  # validation sketches shown per variant (the same ones for every variant)
RESULTS_FORMAT = "pix2pix-ablations/1"
RUN_RESULT = "result.json"
SAMPLES = "samples.png"
# What a run writes in its folder (listed in its marker): a stale run loses those and nothing else. A
# killed write's temporary goes at the run's next start (train.run_folder.remove_killed_writes, by exact name).
RUN_WRITES = (*runs.RUN_WRITES, "run_key.txt", RUN_RESULT, SAMPLES)

GROUPS = {"loss": "Objective (paper Fig. 4, Table 1)", "generator": "Generator architecture (paper Fig. 5)",
          "patch": "Discriminator patch size (paper Fig. 6, Table 3)"}
LAB_GROUPS = {"failure": "What goes wrong, and why (the GAN-dynamics lab, notebook 04)"}  # not the study's


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


def select_variants(names) -> tuple[Variant, ...]:
    """The VARIANTS named (e.g. from `--variants "L1 only,16x16"`), in the study's order."""
    names = {n.strip() for n in names}
    unknown = names - {v.name for v in VARIANTS}
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}: choose from {[v.name for v in VARIANTS]}")
    return tuple(v for v in VARIANTS if v.name in names)


def base_config(**overrides) -> TrainConfig:
    """The quick preset (128 px, half-width nets, batch 8, bf16) that every variant starts from.

    Per-epoch validation inside `fit` is capped (it only feeds the log); the final evaluation
    covers the whole validation split.
    """
    return preset("quick", max_val_batches=2, n_samples=N_SAMPLES).replace(**overrides)


# --- planning: variants -> distinct runs ------------------------------------------------------------
def config_key(config: TrainConfig) -> str:
    """A hash of what decides a run's result: no MACHINERY, log_every or time budget; conditional_d only when off
    (old keys hold)."""
    data = {k: v for k, v in config.to_dict().items() if k not in (*MACHINERY, "log_every", "max_minutes")
            and not (k == "conditional_d" and v)}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def plan_runs(variants, base: TrainConfig) -> list[dict]:
    """Group the variants by resulting config: [{"run", "key", "config", "variants": [names]}].

    Variants whose overrides give identical configs share one run, named after the first of them."""
    runs: dict[str, dict] = {}
    for v in variants:
        if v.group not in GROUPS | LAB_GROUPS:
            raise ValueError(f"variant {v.name!r}: unknown group {v.group!r} (choose from {sorted(GROUPS | LAB_GROUPS)})")
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


def check_study_folders(out_dir: Path, results_path: Path) -> None:
    """Refuse an --out that is not the study's own folder, and a --results file that is not a results file."""
    check_study_folder(out_dir)
    if results_path.suffix.lower() != ".json":  # x.png: the grid (x.png) would be written over the JSON
        raise ValueError(f"{shown(results_path)}: --results names the JSON file, and the grid goes beside it "
                         "with .png; give a name ending in .json")
    for path in (results_path, results_path.with_suffix(".png")):
        if path.exists() and (read_json(results_path) or {}).get("format") != RESULTS_FORMAT:
            raise RefusedError(f"{shown(path)}: exists and is not an ablation results file; it is left as it is "
                               "(choose another --results)")


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
        results_path   -- the combined JSON, *.json (default: <out_dir>/ablations.json); a PNG grid
                          of samples is written beside it (same name, .png).
        perceptual     -- add FID / LPIPS when their weights are on disk.
        max_val_images -- evaluate on this many validation pairs only (fast mode, tests).
        grid_size      -- side in px of one image in the PNG grid.
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    results_path = Path(results_path) if results_path is not None else out_dir / "ablations.json"
    check_study_folders(out_dir, results_path)  # nothing is written before this
    with reading(data_root):  # no rebuild swaps the data under the study
        return _study(data_root, out_dir, results_path, base, budget_images, variants, recompute, progress,
                      perceptual, max_val_images, grid_size)


def _study(data_root, out_dir, results_path, base, budget_images, variants, recompute, progress, perceptual,
           max_val_images, grid_size) -> dict:  # run_experiments, holding the data's reader lock
    for split in ("train", "val"):
        if not (data_root / split).is_dir():
            raise FileNotFoundError(f"{shown(data_root / split)}: no such folder (expected an A|B dataset; build the "
                                    f"default with `python -m pix2pix_lib build-openmoji`)")
    base = base if base is not None else base_config()
    variants = list(variants if variants is not None else VARIANTS)
    device = select_device(base.device)

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
    # Which data a cached run was trained on: its folder, its size, and its manifest (rebuilt data).
    manifest_file = data_root / "manifest.json"
    data_id = (f"{data_root.resolve()} train={len(train_set)} val={len(val_set)} manifest="
               + (hashlib.sha1(manifest_file.read_bytes()).hexdigest()[:12] if manifest_file.is_file() else "none"))

    def scorer():
        return PerceptualMetrics(device=device) if perceptual else None

    out_dir.mkdir(parents=True, exist_ok=True)
    mark_ours(out_dir, "experiments", writes=("sketches.png", "targets.png", "ablations.json", "ablations.png"))
    save_image_atomic(_strip([tensor_to_pil(a) for a in sample_a]), out_dir / "sketches.png")
    save_image_atomic(_strip([tensor_to_pil(b) for b in sample_b]), out_dir / "targets.png")
    baseline = evaluate_predictions(lambda a: a, eval_loader, device=device, perceptual=scorer())

    run_results: dict[str, dict] = {}
    for run in plan_runs(variants, base):
        config = budget_schedule(run["config"], len(train_set), budget_images)
        run_dir = out_dir / run["run"]
        cached = read_json(run_dir / RUN_RESULT)
        if (cached and not recompute and cached.get("key") == run["key"] and cached.get("data") == data_id
                and cached.get("budget_images") == budget_images and cached.get("val_images") == len(eval_set)):
            if progress:
                log.info(f"[{run['run']}] cached: {run_dir / RUN_RESULT}")
            run_results[run["run"]] = cached
            continue
        # An interrupted run of the same settings resumes from its checkpoint; anything else starts afresh.
        identity = f"{run['key']} budget={budget_images} data={data_id}"
        marker = run_dir / "run_key.txt"
        started = marker.read_text().strip() if marker.is_file() else None
        if run_dir.exists() and any(run_dir.iterdir()) and not is_experiment_run(run_dir):
            raise RefusedError(f"{shown(run_dir)}: --out holds a folder named like the run {run['run']!r} that the "
                               "experiments did not make; it is left as it is. Choose another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(run_dir / ".lock", what=run_dir):  # a run another process trains is left alone
            mark_ours(run_dir, "experiment run", writes=RUN_WRITES)  # (again: an older marker listed nothing)
            if recompute or cached is not None or started != identity:
                clear_ours(run_dir, "experiment run")  # a stale run of ours: what a run writes; the rest is kept
            write_text_atomic(marker, identity + "\n")
            if progress:
                log.info(f"[{run['run']}] training {', '.join(run['variants'])}: {config.total_epochs} epochs x "
                         f"{config.max_steps_per_epoch} steps x batch {config.batch_size} on {device}")
            start = time.perf_counter()
            history = train.fit(config, data_root, run_dir, resume="auto", progress=progress,
                                datasets=(train_set, val_set))
            trained = time.perf_counter() - start
        generator, _ = load_generator(run_dir / LAST_GENERATOR, device=device)
        metrics = evaluate_generator(generator, eval_loader, device=device, perceptual=scorer())
        with torch.no_grad():
            fake = generator(sample_a.to(device)).float().cpu()  # (S, 3, H, W)
        save_image_atomic(_strip([tensor_to_pil(f) for f in fake]), run_dir / SAMPLES)
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
        write_json_atomic(run_dir / RUN_RESULT, result)
        run_results[run["run"]] = result
        if progress:
            log.info(f"[{run['run']}] " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))

    manifest = read_json(data_root / "manifest.json") or {}
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
    write_json_atomic(results_path, results)
    grid = ablation_grid(out_dir, results, size=grid_size)
    if manifest.get("attribution"):
        grid = credit_band(grid, manifest["attribution"])
    # 256 colours without dithering: a third of the bytes of full RGB, no visible change (flat emoji).
    save_image_atomic(grid.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE),
                      results_path.with_suffix(".png"), optimize=True)
    return results


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
        strip = open_image(Path(out_dir) / name, formats=("PNG",)).convert("RGB")  # the PNGs the runs wrote
        n = strip.width // strip.height
        strips.append(strip.resize((n * size, size), Image.LANCZOS))
    grid = Image.new("RGB", (strips[0].width, size * len(strips)), "white")
    for i, strip in enumerate(strips):
        grid.paste(strip, (0, i * size))
    return grid


