"""The verbs that train and use a generator: train, generate, export, evaluate, experiments."""

from __future__ import annotations

import argparse
import importlib.util
import math
import dataclasses
from pathlib import Path

import torch

from ..config import PRESET_ALIASES, PRESETS, TrainConfig, describe_field, preset
from ..experiments import BUDGET_IMAGES, VARIANTS, base_config, run_experiments, select_variants
from ..files import RefusedError, atomic_path, read_json, shown, write_json_atomic
from ..generate import DEFAULT_MODE, MODES, colorize_file, plan_outputs
from ..preprocess import check_stroke_width
from ..metrics import (EVALUATION_FORMAT, FID_WEIGHTS_ENV, FID_WEIGHTS_FILE, LPIPS_WEIGHTS_ENV, LPIPS_WEIGHTS_FILE,
                      evaluate_weights, format_metrics_table)
from ..report import checks_markdown, paper_checks, results_markdown
from ..runtime import rank_and_world
from ..train.distributed import join_torchrun, leave_torchrun
from ..train.tensorboard import TensorBoardLog
from .. import runs, train, weights  # as modules: train.fit and weights.SHIPPED_WEIGHTS are looked up when a verb runs
from ..weights import export_generator, load_generator, read_generator


DEVICE_HELP = "auto (default: CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:1, mps"


def _parse_bool(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")  # argparse names the option
    return words[text.lower()]


def add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a pix2pix generator on A|B pairs",
        description="Train pix2pix on a folder of A|B pairs (<data>/train, <data>/val). Every field of "
                    "the preset can be overridden, e.g. --image-size 64 --lr-g 1e-4. Writes samples/, "
                    "log.csv, generator.pt, best_generator.pt and checkpoint.pt to --out.")
    p.add_argument("--preset", type=_preset_name, metavar="{" + ",".join(sorted(PRESETS)) + "}", default=None,
                   help="starting settings: paper (256 px, batch 1), original (batch 4, lr G 1e-4, lr D 5e-5), "
                        "quick (128 px, small nets, bf16 where the CPU has it; ~10 min on a 2-core CPU). "
                        "Default: quick, or with --resume the run's own settings")
    p.add_argument("--data", required=True, help="dataset folder holding train/ and val/ A|B images")
    p.add_argument("--out", required=True, help="run folder for checkpoints, samples and the log")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue the run saved in --out (refused if there is none); --resume path/to/checkpoint.pt "
                        "--out new_folder continues a checkpoint copied elsewhere in a new run folder")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out pair files that fail the check made before the first step, instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bars (one line per epoch remains)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log losses, validation metrics and sample grids for TensorBoard into --out/tensorboard "
                        "(needs the tensorboard package; then: tensorboard --logdir <out>)")
    for f in dataclasses.fields(TrainConfig):
        kind = {"bool": _parse_bool, "int": int, "float": float}.get(str(f.type).split(" |")[0], str)
        if str(f.type).startswith("int | None"):
            kind = int
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                       choices=f.metadata["choices"], help=describe_field(f.name).replace("%", "%%"))  # % formats
    p.set_defaults(func=run_train)


def _preset_name(name: str) -> str:
    """A preset's name, or a deprecated alias (preset() warns about it): the help lists only the current names."""
    if name not in PRESETS and name not in PRESET_ALIASES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(sorted(PRESETS))}, got {name!r}")
    return name


def run_train(args) -> int:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    board = TensorBoardLog(Path(args.out) / runs.TENSORBOARD) if args.tensorboard else None  # refused here if absent
    # Without --preset the options change the run's own settings when resuming, else the quick preset (fit's rule).
    config = join_torchrun(preset(args.preset, **overrides) if args.preset else overrides)  # torchrun: a device each
    resume_from = args.resume if args.resume not in (True, False) else None  # --resume CHECKPOINT (or its folder)
    try:
        train.fit(config, args.data, args.out, resume=args.resume is True, resume_from=resume_from,
                  progress=not args.quiet, skip_bad=args.skip_bad, on_epoch_end=board, on_progress=board)
    finally:
        leave_torchrun()
        if board is not None:
            board.close()
    best = Path(args.out) / runs.BEST_GENERATOR  # of this folder's epochs (a copied checkpoint's best stays there)
    if rank_and_world()[0] == 0 and best.is_file():
        card = read_generator(best)[1]
        print(f"best validation L1 {card.metrics.get('l1', math.nan):.4f} at epoch {card.epoch}: {shown(best)}")
    return 0


def run_generate(args) -> int:
    if args.seed is not None and args.mode != "paper":
        # Refused, not ignored: in eval mode dropout is off, so a seed would change nothing while it
        # looks as if it chose the result (a warning scrolls away in folder mode).
        raise ValueError(f"--seed sets the dropout noise of --mode paper; with --mode {args.mode} there is no noise "
                         "to seed. Add --mode paper, or drop --seed")
    if args.stroke_width is not None:
        check_stroke_width(args.stroke_width, 256)  # refused before the generator loads
    plan = plan_outputs(args.sketch, args.output, force=args.force)  # every refusal before any work
    path = weights.or_shipped(args.weights)
    generator, card = load_generator(path, device=args.device)
    options = dict(mode=args.mode, seed=args.seed, stroke_width=args.stroke_width, with_sketch=args.side_by_side,
                   force=args.force)
    folder, failed = Path(args.sketch).is_dir(), 0
    for src, dst in plan:
        try:
            print(f"{shown(src)} -> {shown(dst)} ({colorize_file(generator, src, dst, card=card, **options)})")
        except (ValueError, OSError) as err:
            if not folder:
                raise
            print(f"skipped {shown(src)}: {err}")  # one bad sketch must not stop the others
            failed += 1
    if folder:
        print(f"coloured {len(plan) - failed} of {len(plan)} sketches with {shown(path)}"
              + (f"; {failed} failed (listed above)" if failed else ""))
    return 1 if failed else 0


def add_generate(subparsers) -> None:
    p = subparsers.add_parser("generate", help="colour a sketch (or a folder of sketches) with a generator",
                              description="Colour sketches with a trained generator. Without --weights, "
                                          "the shipped OpenMoji doodle generator is used.")
    p.add_argument("sketch", help="a sketch image, or a folder of them")
    p.add_argument("-o", "--output", required=True, help="output image (or folder, in folder mode)")
    p.add_argument("--weights", default=None, help=f"generator weights (default: {weights.SHIPPED_WEIGHTS.name})")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                   help=f"eval: dropout off, running stats; paper: dropout on, batch stats (section 3.3); "
                        f"default {DEFAULT_MODE}")
    p.add_argument("--seed", type=int, default=None, help="dropout noise seed for --mode paper")
    p.add_argument("--stroke-width", type=float, default=None, help="target stroke width in px")
    p.add_argument("--side-by-side", action="store_true", help="write sketch | result side by side")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--force", action="store_true",
                   help="replace existing output files that generate did not write (never the input)")
    p.set_defaults(func=run_generate)


def run_export(args) -> int:
    if args.onnx and (args.half or args.note):
        raise ValueError("--onnx writes the network alone, in fp32: drop --half and --note")
    out = export_onnx(args.weights, args.output) if args.onnx else \
        export_generator(args.weights, args.output, half=args.half, note=args.note)
    print(f"{shown(args.weights)} -> {shown(out)} ({out.stat().st_size / 1e6:.1f} MB{', fp16' if args.half else ''})")
    return 0


def export_onnx(src: str | Path, dst: str | Path) -> Path:
    """The generator as an ONNX graph for deployment: eval mode (what `colorize` runs), input "sketch"
    (N, 3, S, S) in [-1, 1] after preprocessing, output "image" in [-1, 1]. Needs the onnx package."""
    dst = Path(dst)
    if dst.suffix != ".onnx":
        raise ValueError(f"{shown(dst)}: --onnx writes an .onnx file; give -o a name ending in .onnx")
    if dst.exists():
        raise RefusedError(f"{shown(dst)}: exists; it is left as it is (choose another -o, or move it away)")
    if importlib.util.find_spec("onnx") is None:
        raise RuntimeError("--onnx needs the onnx package (pip install onnx; onnxruntime to run the result)")
    generator, card = load_generator(src)
    sketch = torch.zeros(1, card.network.get("in_channels", 3), card.image_size, card.image_size)
    with atomic_path(dst) as tmp:
        torch.onnx.export(generator, (sketch,), str(tmp), input_names=["sketch"], output_names=["image"],
                          dynamic_axes={"sketch": {0: "batch"}, "image": {0: "batch"}}, opset_version=17, dynamo=False)
    return dst


def add_export(subparsers) -> None:
    p = subparsers.add_parser("export", help="write a compact generator file from a run (e.g. fp16 for shipping)",
                              description="Copy a generator (best_generator.pt, or a full checkpoint) into a "
                                          "standalone weights file, optionally in half precision.")
    p.add_argument("weights", help="best_generator.pt, generator.pt or checkpoint.pt of a run")
    p.add_argument("-o", "--output", required=True, help="the weights file to write")
    p.add_argument("--half", action="store_true", help="store fp16 tensors (half the size; loaded as fp32)")
    p.add_argument("--note", default=None, help="free text stored with the weights (e.g. the licence)")
    p.add_argument("--onnx", action="store_true",
                   help="write an ONNX graph (-o NAME.onnx) for ONNX Runtime and other deployments (needs onnx)")
    p.set_defaults(func=run_export)


def run_evaluate(args: argparse.Namespace) -> int:
    report = evaluate_weights(args.weights, args.data, split=args.split, batch_size=args.batch_size,
                              max_images=args.max_images, device=args.device, perceptual=not args.no_perceptual,
                              fid_weights=args.fid_weights, lpips_weights=args.lpips_weights)
    print(f"{shown(report['weights'])} on {shown(Path(report['data']) / report['split'])}: {report['images']} pairs at "
          f"{report['image_size']} px ({report['device']})")
    print(format_metrics_table(report["metrics"], report["baseline"], skipped=report["skipped"]))
    if args.json:
        if Path(args.json).exists() and (read_json(args.json) or {}).get("format") != EVALUATION_FORMAT:
            raise RefusedError(f"{shown(args.json)}: exists and is not an evaluation report; it is left as it is")
        print(f"wrote {shown(write_json_atomic(args.json, report))}")
    return 0


def add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="metrics of a generator on a validation split (L1, PSNR, SSIM, FID, LPIPS)",
        description="Evaluate a generator weights file on <data>/<split>: L1, L1 on the changed pixels, "
                    "PSNR, SSIM, sharpness, colourfulness, and FID / LPIPS when their weights are on disk (never "
                    "downloaded), beside the copy-the-sketch baseline. The image size comes from the weights.")
    p.add_argument("--weights", required=True, help="generator weights file (.pt from training or save_generator)")
    p.add_argument("--data", required=True, help="dataset folder holding <split>/ with A|B images")
    p.add_argument("--split", default="val", help="sub-folder to evaluate (default: val)")
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-images", type=int, default=None, help="evaluate N pairs spread over the split")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-perceptual", action="store_true", help="leave FID and LPIPS out")
    p.add_argument("--fid-weights", default=None,
                   help=f"Inception weights for FID (default: ${FID_WEIGHTS_ENV} or <torch hub>/checkpoints/{FID_WEIGHTS_FILE})")
    p.add_argument("--lpips-weights", default=None,
                   help=f"AlexNet weights for LPIPS (default: ${LPIPS_WEIGHTS_ENV} or <torch hub>/checkpoints/{LPIPS_WEIGHTS_FILE})")
    p.set_defaults(func=run_evaluate)


def run_experiments_cli(args: argparse.Namespace) -> int:
    overrides = {"device": args.device}
    if args.num_workers is not None:
        overrides["num_workers"] = args.num_workers
    variants = select_variants(args.variants.split(",")) if args.variants else VARIANTS
    results = run_experiments(args.data, args.out, base=base_config(**overrides), budget_images=args.budget_images,
                              variants=variants, recompute=args.recompute, progress=not args.quiet,
                              results_path=args.results, perceptual=not args.no_perceptual)
    print(results_markdown(results))
    print(checks_markdown(paper_checks(results)))
    print(f"{results['distinct_runs']} runs, {results['total_wall_seconds']:.0f} s on {results['hardware']['summary']}; "
          f"wrote {shown(args.results)} and {shown(Path(args.results).with_suffix('.png'))}")
    return 0


def add_experiments(subparsers) -> None:
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
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default 0; try 4 on a GPU machine)")
    p.add_argument("--no-perceptual", action="store_true", help="leave FID and LPIPS out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_experiments_cli)


