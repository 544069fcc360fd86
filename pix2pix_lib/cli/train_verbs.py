"""The verbs that train and measure: train, evaluate, experiments."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from ..config import PRESET_ALIASES, PRESETS, TrainConfig, describe_field, preset
from ..experiments import BUDGET_IMAGES, VARIANTS, base_config, run_experiments, select_variants
from ..files import RefusedError, read_json, shown, write_json_atomic
from ..metrics import (EVALUATION_FORMAT, FID_WEIGHTS_ENV, FID_WEIGHTS_FILE, LPIPS_WEIGHTS_ENV, LPIPS_WEIGHTS_FILE,
                      evaluate_weights, format_metrics_table)
from ..report import checks_markdown, paper_checks, results_markdown
from ..runtime import rank_and_world
from ..train.distributed import join_torchrun, leave_torchrun
from ..train.run_folder import RunExistsError
from ..train.tensorboard import TensorBoardLog
from .. import runs, train  # as a module: train.fit is looked up when the verb runs
from ..weights import read_generator
from .generator_verbs import DEVICE_HELP




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
    except RunExistsError as err:
        raise RunExistsError(f"{err} (--resume continues it)") from None
    finally:
        leave_torchrun()
        if board is not None:
            board.close()
    best = Path(args.out) / runs.BEST_GENERATOR  # of this folder's epochs (a copied checkpoint's best stays there)
    if rank_and_world()[0] == 0 and best.is_file():
        card = read_generator(best)[1]
        print(f"best validation L1 {card.metrics.get('l1', math.nan):.4f} at epoch {card.epoch}: {shown(best)}")
    return 0


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


