"""Files that appear whole or not at all: write to a temporary name, then rename into place.

A crash or Ctrl-C mid-write leaves the previous file (or none), never a truncated one that looks
complete. Checkpoints, weights, logs, images and results all go through `atomic_path`.
(Whole dataset folders use `data.paths.atomic_output_dir`, the same idea for directories.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
