"""The study: train every distinct run once (cached, resumed when interrupted), score it, and write
the results and the grid of samples. The variants and their planning: variants.py.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from .. import runs, train
from ..config import TrainConfig
from ..data.loaders import make_datasets
from ..data.paired import PairedImageDataset
from ..files import (RefusedError, clear_ours, exclusive_lock, mark_ours, read_json, reading, shown,
                     write_json_atomic, write_text_atomic)
from ..imaging import credit_band, open_image, save_image_atomic, tensor_to_pil
from ..metrics import PerceptualMetrics, evaluate_predictions
from ..runs import LAST_GENERATOR, check_study_folder, is_experiment_run
from ..runtime import hardware_info, select_device
from ..weights import load_generator
from .variants import BUDGET_IMAGES, N_SAMPLES, VARIANTS, base_config, budget_schedule, plan_runs

log = logging.getLogger(__name__)
RESULTS_FORMAT = "pix2pix-ablations/1"
RUN_RESULT = "result.json"
SAMPLES = "samples.png"
# What a run writes in its folder (listed in its marker): a stale run loses those and nothing else. A
# killed write's temporary goes at the run's next start (train.run_folder.remove_killed_writes, by exact name).
RUN_WRITES = (*runs.RUN_WRITES, "run_key.txt", RUN_RESULT, SAMPLES)



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
    base = base if base is not None else base_config()
    variants, device = list(variants if variants is not None else VARIANTS), select_device(base.device)
    with reading(data_root):  # no rebuild swaps the data under the study
        study = load_study_data(data_root, base, max_val_images)
        scorer = (lambda: PerceptualMetrics(device=device)) if perceptual else (lambda: None)
        baseline = start_study_folder(out_dir, study, device, scorer())
        done = {}
        for run in plan_runs(variants, base):
            identity = RunIdentity(run["key"], study.data_id, budget_images, len(study.eval_set))
            done[run["run"]] = train_and_score(run, identity, study, out_dir, device=device, scorer=scorer,
                                               recompute=recompute, progress=progress)
        results = combine_results(variants, done, base, study, baseline, budget_images, device)
        write_results(results, results_path, out_dir, study, grid_size)
    return results


@dataclass
class StudyData:
    """What every variant reads: the same pairs at the same size, and which data that was."""

    root: Path
    train_set: object
    val_set: object
    eval_set: object
    picks: list[int]      # the validation pairs shown in the grid
    data_id: str          # folder, sizes and manifest: a cached run must have been trained on this


def load_study_data(data_root: Path, base: TrainConfig, max_val_images: int | None) -> StudyData:
    for split in ("train", "val"):
        if not (data_root / split).is_dir():
            raise FileNotFoundError(f"{shown(data_root / split)}: no such folder (expected an A|B dataset; build the "
                                    f"default with `python -m pix2pix_lib build-openmoji`)")
    train_set, _ = make_datasets(base, data_root)  # jitter settings come from the base
    val_set = PairedImageDataset(data_root, "val", image_size=base.image_size, load_size=base.image_size, flip=False)
    eval_set = val_set
    if max_val_images is not None and max_val_images < len(val_set):
        eval_set = torch.utils.data.Subset(val_set, range(max_val_images))
    picks = torch.linspace(0, len(val_set) - 1, min(N_SAMPLES, len(val_set))).round().long().unique().tolist()
    manifest = data_root / "manifest.json"  # rebuilt data: another manifest
    data_id = (f"{data_root.resolve()} train={len(train_set)} val={len(val_set)} manifest="
               + (hashlib.sha1(manifest.read_bytes()).hexdigest()[:12] if manifest.is_file() else "none"))
    return StudyData(data_root, train_set, val_set, eval_set, picks, data_id)


@dataclass(frozen=True)
class RunIdentity:
    """What decides a run's result: a cached result.json is reused, and an interrupted run resumed, only when
    it matches (its settings' key, its data, its budget, the validation images it was scored on)."""

    key: str
    data_id: str
    budget_images: int
    val_images: int

    def matches(self, cached: dict | None) -> bool:
        return bool(cached) and (cached.get("key"), cached.get("data"), cached.get("budget_images"),
                                 cached.get("val_images")) == (self.key, self.data_id, self.budget_images, self.val_images)

    @property
    def marker(self) -> str:  # run_key.txt: what an interrupted run was started as
        return f"{self.key} budget={self.budget_images} data={self.data_id}"


def start_study_folder(out_dir: Path, study: StudyData, device, scorer) -> dict:
    """Mark the study's folder, write the sketch and target strips, and score copying the sketch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_ours(out_dir, "experiments", writes=("sketches.png", "targets.png", "ablations.json", "ablations.png"))
    save_image_atomic(_strip([tensor_to_pil(study.val_set[i]["A"]) for i in study.picks]), out_dir / "sketches.png")
    save_image_atomic(_strip([tensor_to_pil(study.val_set[i]["B"]) for i in study.picks]), out_dir / "targets.png")
    return score(lambda a: a, study, device, scorer)


def score(predict, study: StudyData, device, scorer) -> dict:
    """The metrics of `predict` on the evaluated pairs: {"metrics": numbers, "skipped": {name: why}}."""
    loader = DataLoader(study.eval_set, batch_size=32, num_workers=0)
    metrics = evaluate_predictions(predict, loader, device=device, perceptual=scorer)
    return {"metrics": metrics, "skipped": scorer.skipped if scorer is not None else {}}


def train_and_score(run: dict, identity: RunIdentity, study: StudyData, out_dir: Path, *, device, scorer,
                    recompute: bool, progress: bool) -> dict:
    """One distinct run: its cached result when it matches `identity`, else trained (resumed when it was
    interrupted with the same identity), scored and cached in its folder's result.json."""
    config, run_dir = budget_schedule(run["config"], len(study.train_set), identity.budget_images), out_dir / run["run"]
    cached = read_json(run_dir / RUN_RESULT)
    if identity.matches(cached) and not recompute:
        if progress:
            log.info(f"[{run['run']}] cached: {run_dir / RUN_RESULT}")
        return cached
    marker = run_dir / "run_key.txt"
    started = marker.read_text().strip() if marker.is_file() else None
    if run_dir.exists() and any(run_dir.iterdir()) and not is_experiment_run(run_dir):
        raise RefusedError(f"{shown(run_dir)}: --out holds a folder named like the run {run['run']!r} that the "
                           "experiments did not make; it is left as it is. Choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(run_dir / ".lock", what=run_dir):  # a run another process trains is left alone
        mark_ours(run_dir, "experiment run", writes=RUN_WRITES)  # (again: an older marker listed nothing)
        if recompute or cached is not None or started != identity.marker:
            clear_ours(run_dir, "experiment run")  # a stale run of ours: what a run writes; the rest is kept
        write_text_atomic(marker, identity.marker + "\n")
        if progress:
            log.info(f"[{run['run']}] training {', '.join(run['variants'])}: {config.total_epochs} epochs x "
                     f"{config.max_steps_per_epoch} steps x batch {config.batch_size} on {device}")
        start = time.perf_counter()
        history = train.fit(config, study.root, run_dir, resume="auto", progress=progress,
                            datasets=(study.train_set, study.val_set))
        trained = time.perf_counter() - start
    generator, _ = load_generator(run_dir / LAST_GENERATOR, device=device)
    scored = score(generator, study, device, scorer())
    with torch.no_grad():
        fake = generator(torch.stack([study.val_set[i]["A"] for i in study.picks]).to(device)).float().cpu()
    save_image_atomic(_strip([tensor_to_pil(f) for f in fake]), run_dir / SAMPLES)
    steps = int(history[-1]["step"]) if history else 0
    result = {
        "run": run["run"], "key": identity.key, "data": identity.data_id, "variants": run["variants"],
        "config": config.to_dict(), "budget_images": identity.budget_images,
        "images_seen": steps * config.batch_size, "steps": steps,
        "epochs": config.total_epochs, "val_images": identity.val_images, **scored,
        "train_seconds": round(sum(row["seconds"] for row in history), 2),
        "wall_seconds": round(time.perf_counter() - start, 2), "fit_seconds": round(trained, 2),
        "hardware": hardware_info(device), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    write_json_atomic(run_dir / RUN_RESULT, result)
    if progress:
        log.info(f"[{run['run']}] " + "  ".join(f"{k} {v:.4f}" for k, v in scored["metrics"].items()))
    return result


def combine_results(variants, done: dict, base: TrainConfig, study: StudyData, baseline: dict, budget_images: int,
                    device) -> dict:
    """The study's one results record (RESULTS_FORMAT): a row per variant, the baseline, how it ran."""
    manifest = read_json(study.root / "manifest.json") or {}
    first = next(iter(done.values()))
    rows = []
    for v in variants:
        run = next(r for r in done.values() if v.name in r["variants"])
        rows.append({
            "variant": v.name, "group": v.group, "overrides": v.overrides, "note": v.note, "run": run["run"],
            "shared_with": [n for n in run["variants"] if n != v.name], "metrics": run["metrics"],
            "skipped": run.get("skipped", {}), "images_seen": run["images_seen"], "steps": run["steps"],
            "train_seconds": run["train_seconds"], "wall_seconds": run["wall_seconds"],
            "samples": f"{run['run']}/{SAMPLES}",
        })
    return {
        "format": RESULTS_FORMAT,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "budget_images": budget_images,
        # How the budget was spent (base_config below keeps the preset's own epochs).
        "schedule": {k: first["config"][k] for k in ("epochs", "epochs_decay", "max_steps_per_epoch", "batch_size")},
        "seed": base.seed,
        "base_config": base.to_dict(),
        "hardware": hardware_info(device),
        "torch": torch.__version__,
        "data": {"root": study.root.name, "train_pairs": len(study.train_set), "val_pairs": len(study.val_set),
                 "val_images_evaluated": len(study.eval_set), "rendered_size": manifest.get("size"),
                 "source": manifest.get("source", {}).get("package"),
                 "source_version": manifest.get("source", {}).get("version")},
        "distinct_runs": len(done),
        "total_wall_seconds": round(sum(r["wall_seconds"] for r in done.values()), 1),
        "baseline": baseline["metrics"], "baseline_skipped": baseline["skipped"],
        "sample_files": [Path(study.val_set.files[i]).name for i in study.picks],
        "variants": rows,
    }


def write_results(results: dict, results_path: Path, out_dir: Path, study: StudyData, grid_size: int) -> None:
    """The results JSON, and the grid of every run's samples beside it (credited like the data)."""
    write_json_atomic(results_path, results)
    grid = ablation_grid(out_dir, results, size=grid_size)
    attribution = (read_json(study.root / "manifest.json") or {}).get("attribution")
    if attribution:
        grid = credit_band(grid, attribution)
    # 256 colours without dithering: a third of the bytes of full RGB, no visible change (flat emoji).
    save_image_atomic(grid.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE),
                      results_path.with_suffix(".png"), optimize=True)


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


