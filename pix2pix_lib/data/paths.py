"""Where datasets live: `default_data_dir()`, the folder datasets land in when the caller names none.

(Whole dataset folders appear at once through `files.atomic_output_dir`, which also refuses to
replace a folder the library did not make.)
"""

from __future__ import annotations

import os
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
