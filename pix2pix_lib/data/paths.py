"""Where datasets live, and how a dataset folder appears all at once.

Two small helpers every data module shares:

- `default_data_dir()`: the folder datasets land in when the caller names none.
- `atomic_output_dir(out_dir)`: a context manager that hands out a temporary sibling folder and
  renames it to `out_dir` only when the block finishes without an error. An interrupted build
  (Ctrl-C, a crash, a bad file) therefore never leaves a half-written folder that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../pix2pix_lib


def default_data_dir() -> Path:
    """The folder datasets go to by default.

    In order: the environment variable ``PIX2PIX_DATA_DIR`` if set; the repository's ``data/``
    folder when the package sits in a checkout (its parent holds ``data/README.md`` and
    ``pyproject.toml``); otherwise ``~/.cache/pix2pix-course/data`` (an installed package must not
    write into site-packages).
    """
    env = os.environ.get("PIX2PIX_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo = PACKAGE_DIR.parent
    if (repo / "data" / "README.md").is_file() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".cache" / "pix2pix-course" / "data"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path, *, overwrite: bool = True):
    """Yield a fresh temporary folder beside `out_dir`; on success it replaces `out_dir`.

    Parameters:
        out_dir (path)    -- the final folder.
        overwrite (bool)  -- replace an existing `out_dir` (True) or raise FileExistsError (False).

    On any exception (KeyboardInterrupt included) the temporary folder is deleted and `out_dir`
    is left as it was. The temporary name starts with a dot and ends in ``.partial`` so that
    nothing mistakes it for a dataset.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir}: already exists (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.partial")
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        # Move the old data aside (never half-deleted under its real name), then rename ours in.
        # Retried: another process building the same folder may slip its result in between.
        old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
        for attempt in range(3):
            if out_dir.exists() or out_dir.is_symlink():
                _remove(old)
                out_dir.rename(old)
            try:
                tmp.rename(out_dir)
                break
            except OSError:
                if attempt == 2:
                    raise
        _remove(old)
    finally:
        if tmp.exists():
            _remove(tmp)
