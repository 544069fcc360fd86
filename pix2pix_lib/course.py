"""Where the course's own files are: the notebooks, the results they read, the shipped weights.

Two ways to have the course:
- a clone of the repository: the package sits in it, beside notebooks/, results/ and weights/;
- a plain `pip install` of the wheel: the build copies those three folders into the package
  (pix2pix_lib/course/, see setup.py), and `python -m pix2pix_lib notebooks DIR` copies the
  notebooks and results out to a folder of the user's, as d2l's package does.

A notebook finds its folders (data, runs, results) from `course_root()`: PIX2PIX_COURSE_DIR when set, the
clone, a folder made by `notebooks DIR`, or else the current folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .files import OWNER_MARKER, PACKAGE_DIR, RefusedError, atomic_output_dir, read_json, shown

CLONE = PACKAGE_DIR.parent           # the repository, when the package sits in a clone
BUNDLED = PACKAGE_DIR / "course"     # what the wheel carries (setup.py copies it in)
COURSE_FOLDERS = ("notebooks", "results", "weights")
COURSE_KIND = "course"  # the marker's kind in a folder made by `notebooks DIR`
NOTEBOOKS = "[0-9][0-9]_*.ipynb"  # the course's notebooks (setup.py, which cannot import this, repeats it)


def _is_clone(folder: Path) -> bool:
    return (folder / "notebooks").is_dir() and (folder / "pix2pix_lib").is_dir() and (folder / "pyproject.toml").is_file()


def _is_copied_course(folder: Path) -> bool:
    marker = folder / OWNER_MARKER
    return marker.is_file() and (read_json(marker) or {}).get("kind") == COURSE_KIND


def course_files(name: str) -> Path:
    """notebooks/, results/ or weights/ as shipped: the clone's, else the wheel's copy."""
    if name not in COURSE_FOLDERS:
        raise ValueError(f"no course folder {name!r}; there are {', '.join(COURSE_FOLDERS)}")
    bundled = BUNDLED / name
    return bundled if not _is_clone(CLONE) and bundled.is_dir() else CLONE / name


def course_root(start: str | Path | None = None) -> Path:
    """The folder a notebook keeps its data, runs and results in (absolute).

    PIX2PIX_COURSE_DIR, when set, is the answer (`~` expanded; created by whoever writes there). Else
    looked for from `start` (default: the current folder) upwards: a clone of the repository or a
    folder made by `python -m pix2pix_lib notebooks DIR`. Then the clone the package sits in (an
    editable install, wherever the notebook runs), except while nbgrader grades (NBGRADER_EXECUTION
    set): every submission then keeps its runs in its own folder, so a class graded from one install
    never shares the clone's runs/quick (and `fit` never resumes one student's run for the next).
    Else the current folder itself (a plain `pip install`, a notebook opened anywhere).
    """
    override = os.environ.get("PIX2PIX_COURSE_DIR", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_clone(folder) or _is_copied_course(folder):
            return folder
    return CLONE if _is_clone(CLONE) and not os.environ.get("NBGRADER_EXECUTION") else here


def copy_course(dest: str | Path) -> Path:
    """Copy the notebooks and the results they read into `dest` (new or empty); returns it.

    The shipped weights stay in the package (the notebooks load them from there). Refused when
    `dest` holds anything: your runs and edited notebooks there are never overwritten.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RefusedError(f"{shown(dest)}: exists and is not empty; give a new folder "
                           "(nothing in this one is touched: your runs and edited notebooks stay)")
    sources = {name: course_files(name) for name in ("notebooks", "results")}
    missing = [shown(path) for path in sources.values() if not path.is_dir()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: not in this installation (a wheel built without setup.py?)")
    with atomic_output_dir(dest, kind=COURSE_KIND, flag="DIR") as tmp:
        for name, source in sources.items():
            (tmp / name).mkdir()
            for path in sorted(source.glob(NOTEBOOKS if name == "notebooks" else "*.*")):
                if path.is_file() and not path.name.startswith("."):
                    shutil.copy2(path, tmp / name / path.name)
    return dest.resolve()
