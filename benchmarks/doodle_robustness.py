"""Doodle robustness: how well do generators colour sketches drawn unlike the training line art?

    .venv/bin/python benchmarks/doodle_robustness.py \
        --model doodle=weights/openmoji_doodle_256.pt --model plain=runs/shipped-plain/best_generator.pt \
        --model canny=runs/shipped-canny/best_generator.pt --max-images 200 \
        --json results/doodle_robustness.json --figure results/seed_failure_vs_fix.png

The numbers behind the model card (weights/README.md) and notebook 05, section 8 (issue #5).

Test sets: `write_robustness_sets(data/val, ...)` redraws every validation sketch four ways with
the target B unchanged (pix2pix_lib/data/sketch_augment.py, seed 0): *thicker* (strokes widened by
the training width, ~2x), *thinner* (the 1-px skeleton), *shaky* (a fine elastic wobble of the
strokes alone, 0.8 % of the side, 10 bends across), *incomplete* (3 gaps of 8 % of the side
erased). Plus *clean*: the validation line art as it is.

Each generator sees the **raw** variant sketches, as `evaluate_generator` does in training (eval
mode, fp32): this measures what the *model* tolerates. `preprocess_sketch`, which every doodle goes
through at generation time, also normalises stroke width; it cannot be applied as it is here
(its crop-and-pad would move the sketch away from its target), so the "+ width normalisation"
rows apply only its stroke-width step (same code path: 2x working size, `normalize_stroke_width`
to the training width, averaged down) to the sets where width is what differs.

Metrics (pix2pix_lib/metrics.py, images in [0, 1]): L1, PSNR, SSIM against the unchanged targets;
`l1_changed` is the L1 over the pixels where *that set's* sketch differs from the target, so it
moves with the sketch as well as with the output - compare it across models within one set.
`copy-the-sketch` is the baseline of predicting B = A. Optionally also eval vs paper test-time
mode (batch 1, as `colorize` runs) on the clean set, and the comparison figure on the example
doodles (sketch as the generator sees it | each model), 128 px tiles. On those doodles also the
share of each output that stays white outside the drawing's convex hull (`background_white`):
colour painted on the paper around the object, such as a slab under a flat shoe, lowers it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pix2pix_lib.data.paired import (PairedImageDataset, list_pair_files, load_rgb,  # noqa: E402
                                     make_pair_image, split_pair_array)
from pix2pix_lib.files import atomic_output_dir  # noqa: E402
from pix2pix_lib.data.sketch_augment import VARIANT_KINDS, write_robustness_sets  # noqa: E402
from pix2pix_lib.strokes import normalize_stroke_width  # noqa: E402
from pix2pix_lib.generate import colorize, generation_mode, input_size_of  # noqa: E402
from pix2pix_lib.preprocess import preprocess_sketch  # noqa: E402
from pix2pix_lib.weights import load_generator  # noqa: E402
from pix2pix_lib.strokes import target_stroke_width, white_outside_ink  # noqa: E402
from pix2pix_lib.data.openmoji import openmoji_attribution  # noqa: E402
from pix2pix_lib.metrics import evaluate_generator, evaluate_predictions  # noqa: E402
from pix2pix_lib.imaging import credit_band, save_image_atomic, tensor_to_pil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOODLES = ROOT / "pix2pix_lib" / "assets" / "doodles"
SETS = ("clean",) + VARIANT_KINDS
WIDTH_SETS = ("clean", "thicker", "thinner")  # where stroke-width normalisation has something to do
TABLE_METRICS = ("l1", "l1_changed", "psnr", "ssim")
BACKGROUND_DESCRIPTION = ("share of each output that stays white (all channels >= 230) outside the drawing's "
                          "convex hull widened by 2 % of the side, eval mode")
# Column titles of the figure for the names weights/make_weights.sh uses (others: the name itself).
FIGURE_TITLES = {"doodle": "augmented (shipped)", "plain": "plain line art", "canny": "Canny edges (seed)"}


def normalize_width_only(a: np.ndarray, *, image_size: int) -> np.ndarray:
    """The stroke-width step of `preprocess_steps` alone (no crop/pad): uint8 (H, W, 3) -> same."""
    ink = 1.0 - a.mean(axis=2).astype(np.float32) / 255.0                        # (H, W), 1 = stroke
    work = 2 * image_size
    big = cv2.resize(ink, (work, work), interpolation=cv2.INTER_LINEAR)          # (2S, 2S)
    fixed = normalize_stroke_width(big > 0.25, 2 * target_stroke_width(image_size)).astype(np.float32)
    small = 1.0 - cv2.resize(fixed, (image_size, image_size), interpolation=cv2.INTER_AREA)
    gray = (small * 255).round().clip(0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def write_width_normalized(src_root: Path, dst_root: Path, *, image_size: int) -> Path:
    """Copy a `<root>/val` pair folder with every sketch width-normalised; returns dst_root.

    dst_root appears only when complete (an interrupted run must not leave a partial set behind).
    """
    with atomic_output_dir(dst_root) as tmp:
        (tmp / "val").mkdir()
        for path in list_pair_files(src_root / "val"):
            a, b = split_pair_array(load_rgb(path), path=path)
            make_pair_image(normalize_width_only(a, image_size=image_size), b).save(tmp / "val" / path.name)
    return dst_root


def loader_for(root: Path, *, size: int, picks: list[int] | None, batch_size: int) -> DataLoader:
    dataset = PairedImageDataset(root, "val", image_size=size, load_size=size, flip=False)
    return DataLoader(Subset(dataset, picks) if picks is not None else dataset, batch_size=batch_size)


def paper_mode_metrics(generator, loader) -> dict:
    """Metrics with the paper's test-time mode, one image per batch (as `colorize` runs it), seed 0."""
    torch.manual_seed(0)
    single = (dict(A=a[None], B=b[None]) for batch in loader for a, b in zip(batch["A"], batch["B"]))

    def predict(a):
        with generation_mode(generator, "paper"):
            return generator(a)

    return evaluate_predictions(predict, single)


def comparison_figure(models: dict, path: Path, *, tile: int = 128, mode: str = "eval", doodles_dir: Path = DOODLES,
                      credit: str | None = None) -> Path:
    """Example doodles: sketch as the first generator sees it | one column per model. Palette PNG, small."""
    doodles = sorted(Path(doodles_dir).glob("*.png"))
    first, first_card = next(iter(models.values()))  # {name: (generator, card)}
    titles = ["sketch as G sees it"] + [FIGURE_TITLES.get(name, name) for name in models]
    head, gap = 18, 4
    width = len(titles) * tile + (len(titles) - 1) * gap
    sheet = Image.new("RGB", (width, head + len(doodles) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(titles):
        draw.text((j * (tile + gap) + 2, 3), title, fill="black")
    for i, p in enumerate(doodles):
        seen = tensor_to_pil(preprocess_sketch(p, image_size=input_size_of(first), style=first_card.sketch_style))
        row = [seen] + [colorize(g, p, card=card, mode=mode) for g, card in models.values()]
        for j, im in enumerate(row):
            sheet.paste(im.resize((tile, tile), Image.LANCZOS), (j * (tile + gap), head + i * (tile + gap)))
    sheet = credit_band(sheet, credit or "Generators trained on OpenMoji line art. " + openmoji_attribution())
    return save_image_atomic(sheet.quantize(colors=128, method=Image.MEDIANCUT, dither=Image.NONE), path, optimize=True)


def background_white(seen: Image.Image, out: Image.Image, *, margin: float = 0.02, white: int = 230) -> float:
    """Share of the output that stays white outside the drawing's hull (`strokes.white_outside_ink`)."""
    ink = np.asarray(seen.convert("L"), dtype=np.uint8) < 128                 # (S, S), as G sees it
    rgb = np.asarray(out.convert("RGB").resize(seen.size, Image.BILINEAR))     # (S, S, 3)
    return white_outside_ink(ink, rgb, margin=margin, white=white)


def doodle_backgrounds(models: dict, doodles_dir: Path, *, mode: str = "eval") -> dict:
    """{model: {doodle name: white share outside its hull}} for every doodle of the folder."""
    doodles = sorted(Path(doodles_dir).glob("*.png"))
    report = {}
    for name, (g, card) in models.items():
        size = input_size_of(g)
        report[name] = {p.stem: round(background_white(
            tensor_to_pil(preprocess_sketch(p, image_size=size, style=card.sketch_style)),
            colorize(g, p, card=card, mode=mode)), 4) for p in doodles}
    return report


def print_backgrounds(backgrounds: dict) -> None:
    print("background white outside the drawing's hull (share of pixels; targets: mean >= 0.98, each >= 0.95):")
    for name, shares in backgrounds.items():
        values = list(shares.values())
        worst = min(shares, key=shares.get)
        print(f"  {name:<28} mean {np.mean(values):.4f}  min {shares[worst]:.4f} ({worst})  "
              f"below 0.95: {sum(v < 0.95 for v in values)} of {len(values)}")


def markdown_table(results: dict, names: list[str], sets: list[str], metric: str) -> str:
    lines = [f"| {metric} | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for name in names + ["copy-the-sketch"]:
        cells = [f"{results[s][name][metric]:.4f}" if metric != "psnr" else f"{results[s][name][metric]:.2f}"
                 for s in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=WEIGHTS",
                        help="a generator to compare (repeat); the first is the reference")
    parser.add_argument("--data", default=str(ROOT / "data" / "openmoji"), help="A|B dataset with val/")
    parser.add_argument("--sets-dir", default=str(ROOT / "runs" / "robustness-sets"),
                        help="where the perturbed sets are written (reused if already there)")
    parser.add_argument("--max-images", type=int, default=200, help="val pairs, spread evenly (0: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-width-normalization", action="store_true")
    parser.add_argument("--paper-mode-images", type=int, default=100,
                        help="clean val pairs for the eval-vs-paper-mode comparison (0: skip)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=None, help="write the example-doodle comparison PNG here")
    parser.add_argument("--figure-only", action="store_true", help="only the figure: no metrics")
    parser.add_argument("--doodles", default=str(DOODLES), help="folder of doodles for the figure")
    parser.add_argument("--credit", default=None, help="credit line under the figure (default: OpenMoji's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()

    models = {}
    for spec in args.model:
        name, _, weights = spec.partition("=")
        if not weights:
            raise ValueError(f"--model {spec!r}: expected NAME=WEIGHTS")
        models[name] = (load_generator(weights), weights)
    if args.figure_only:
        if not args.figure:
            raise ValueError("--figure-only needs --figure PATH")
        fig = comparison_figure({name: loaded for name, (loaded, _) in models.items()}, Path(args.figure),
                                doodles_dir=Path(args.doodles), credit=args.credit)
        print(f"wrote {fig} ({fig.stat().st_size / 1e3:.0f} kB)")
        backgrounds = doodle_backgrounds({name: loaded for name, (loaded, _) in models.items()}, Path(args.doodles))
        print_backgrounds(backgrounds)
        if args.json:  # the figure's doodles measured: white outside each drawing's hull
            Path(args.json).write_text(json.dumps({
                "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
                "models": {name: {"weights": w, "card": card.to_dict()} for name, ((_, card), w) in models.items()},
                "doodle_background_white": {"doodles": str(args.doodles), "by_model": backgrounds,
                                            "description": BACKGROUND_DESCRIPTION}}, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.json}")
        return 0
    size = next(iter(models.values()))[0][1].image_size
    data, sets_dir = Path(args.data), Path(args.sets_dir)
    if not (data / "val").is_dir():
        raise FileNotFoundError(f"{data / 'val'}: no validation folder (build it with `python -m pix2pix_lib "
                                f"build-openmoji --out {data} --size {size}`)")

    roots = {"clean": data}
    if all((sets_dir / k / "val").is_dir() for k in VARIANT_KINDS):
        roots |= {k: sets_dir / k for k in VARIANT_KINDS}
    else:
        print(f"writing the robustness sets to {sets_dir} ...", flush=True)
        roots |= write_robustness_sets(data / "val", sets_dir, seed=0)
    if not args.no_width_normalization:
        for kind in WIDTH_SETS:
            dst = sets_dir / f"{kind}+width"
            if not (dst / "val").is_dir():
                write_width_normalized(roots[kind], dst, image_size=size)
            roots[f"{kind} + width normalisation"] = dst

    total = len(list_pair_files(data / "val"))
    n = total if args.max_images in (0, None) or args.max_images >= total else args.max_images
    picks = None if n == total else torch.linspace(0, total - 1, n).round().long().unique().tolist()

    results: dict[str, dict[str, dict]] = {}
    for set_name, root in roots.items():
        loader = loader_for(root, size=size, picks=picks, batch_size=args.batch_size)
        results[set_name] = {name: evaluate_generator(g, loader) for name, ((g, _), _) in models.items()}
        results[set_name]["copy-the-sketch"] = evaluate_predictions(lambda a: a, loader)
        print(f"{set_name:<34}" + "  ".join(f"{k} {v['l1']:.4f}" for k, v in results[set_name].items()),
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    mode_comparison = None
    if args.paper_mode_images:
        m = min(args.paper_mode_images, total)
        mode_picks = torch.linspace(0, total - 1, m).round().long().unique().tolist()
        loader = loader_for(data, size=size, picks=mode_picks, batch_size=args.batch_size)
        mode_comparison = {"images": len(mode_picks), "set": "clean"}
        for name, ((g, _), _) in models.items():
            mode_comparison[name] = {"eval": evaluate_generator(g, loader),
                                     "paper_batch1": paper_mode_metrics(g, loader)}

    names = list(models)
    raw_sets = list(SETS)
    print(f"\n{n} of {total} val pairs at {size} px, eval mode; raw variant sketches:\n")
    for metric in TABLE_METRICS:
        print(markdown_table(results, names, raw_sets, metric) + "\n")
    width_sets = [s for s in results if s.endswith("width normalisation")]
    if width_sets:
        print("the same, sketches width-normalised first (preprocess_sketch's stroke-width step):\n")
        print(markdown_table(results, names, width_sets, "l1") + "\n")
    if mode_comparison:
        print(f"eval vs paper mode (batch 1, seed 0) on {mode_comparison['images']} clean val pairs:")
        for name in names:
            e, p = mode_comparison[name]["eval"], mode_comparison[name]["paper_batch1"]
            print(f"  {name:<8} L1 eval {e['l1']:.4f} / paper {p['l1']:.4f}   "
                  f"SSIM eval {e['ssim']:.4f} / paper {p['ssim']:.4f}")

    backgrounds = doodle_backgrounds({name: loaded for name, (loaded, _) in models.items()}, Path(args.doodles))
    print_backgrounds(backgrounds)

    if args.json:
        report = {
            "description": "Validation metrics (eval mode, fp32) on OpenMoji val sketches redrawn by "
                           "pix2pix_lib.data.sketch_augment.write_robustness_sets(seed=0); targets unchanged. "
                           "'<set> + width normalisation' = the set after preprocess_sketch's stroke-width step. "
                           "l1_changed is over the pixels where that set's sketch differs from the target.",
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
            "data": str(data), "images": n, "of": total, "image_size": size,
            "picks": ("all" if picks is None
                      else "torch.linspace(0, total - 1, images).round() over the sorted val files"),
            "models": {name: {"weights": w, "card": card.to_dict()} for name, ((_, card), w) in models.items()},
            "sets": list(roots), "results": results, "mode_comparison": mode_comparison,
            "doodle_background_white": {"doodles": str(args.doodles), "by_model": backgrounds,
                                        "description": BACKGROUND_DESCRIPTION},
            "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    if args.figure:
        fig = comparison_figure({name: loaded for name, (loaded, _) in models.items()}, Path(args.figure),
                                doodles_dir=Path(args.doodles), credit=args.credit)
        print(f"wrote {fig} ({fig.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
