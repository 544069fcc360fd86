"""The verbs that use a finished generator: generate (sketches -> pictures) and export (a file to share).

Apart from train's, so that colouring one drawing loads the generator and nothing of training.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ..files import RefusedError, atomic_path, shown
from ..generate import DEFAULT_MODE, MODES, colorize_file, plan_outputs
from ..preprocess import check_stroke_width
from .. import weights  # as a module: weights.SHIPPED_MODELS is looked up when a verb runs
from ..weights import export_generator, load_generator

DEVICE_HELP = "auto (default: CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:1, mps"


def run_generate(args) -> int:
    if args.seed is not None and args.mode != "paper":
        # Refused, not ignored: in eval mode dropout is off, so a seed would change nothing while it
        # looks as if it chose the result (a warning scrolls away in folder mode).
        raise ValueError(f"--seed sets the dropout noise of --mode paper; with --mode {args.mode} there is no noise "
                         "to seed. Add --mode paper, or drop --seed")
    if args.stroke_width is not None:
        check_stroke_width(args.stroke_width, 256)  # refused before the generator loads
    plan = plan_outputs(args.sketch, args.output, force=args.force)  # every refusal before any work
    path = weights.or_shipped(args.weights, args.model)
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
                              description="Colour sketches with a trained generator: --weights FILE, or a "
                                          "shipped one by name (--model shoes). Without either, the shipped "
                                          "OpenMoji doodle generator (--model emoji).")
    p.add_argument("sketch", help="a sketch image, or a folder of them")
    p.add_argument("-o", "--output", required=True, help="output image (or folder, in folder mode)")
    p.add_argument("--weights", default=None, help="generator weights file (.pt or .safetensors)")
    p.add_argument("--model", choices=list(weights.SHIPPED_MODELS), default=None,
                   help="a shipped generator by name (default: emoji): doodles -> emoji, shoe photos, car photos")
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
