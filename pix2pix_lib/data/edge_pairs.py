"""The seed's recipe applied to any paired dataset: replace each sketch A by the edges of B.

The seed project trained on edges of photos and found that its generator coloured hand-drawn
doodles badly. Deriving an edges dataset from the OpenMoji pairs (same targets, same split, only
the sketches differ) lets notebook 05 show that failure next to the fix on equal terms.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm.auto import tqdm

from ..imaging import save_image_atomic
from .edges import edges_for
from .paired import list_pair_files, load_rgb, make_pair_image, split_pair_array
from ..files import atomic_output_dir


def derive_edge_pairs(src_root: str | Path, out_root: str | Path, *, style: str = "canny",
                      splits: tuple[str, ...] = ("train", "val"), progress: bool = True) -> Path:
    """Write `out_root/<split>/<name>.png` with A = `style` edges of B ("canny" or "sketch").

    The folder appears only when complete (built in a temporary folder, then renamed).
    """
    src_root, out_root = Path(src_root), Path(out_root)
    with atomic_output_dir(out_root, kind=f"{style}-edge pairs", inputs=(src_root,), flag="out_root") as tmp:
        for split in splits:
            files = list_pair_files(src_root / split)
            for path in tqdm(files, desc=f"{style} edges of {split}", disable=not progress):
                _, b = split_pair_array(load_rgb(path), path=path)
                a = edges_for(b, style, rgb=True)
                save_image_atomic(make_pair_image(a, b), tmp / split / f"{path.stem}.png")
        _carry_licence(src_root, tmp, style)
    return out_root


def _carry_licence(src_root: Path, folder: Path, style: str) -> None:
    """The source's ATTRIBUTION.txt (plus this change) and LICENSE.txt: B is still the source's work."""
    attribution = src_root / "ATTRIBUTION.txt"
    if attribution.is_file():
        text = attribution.read_text(encoding="utf-8").rstrip("\n")
        (folder / "ATTRIBUTION.txt").write_text(
            f"{text}\nFurther change: each sketch (A) replaced by {style} edges of its target (B) "
            "(pix2pix_lib.data.edge_pairs).\n", encoding="utf-8")
    if (src_root / "LICENSE.txt").is_file():
        shutil.copyfile(src_root / "LICENSE.txt", folder / "LICENSE.txt")
