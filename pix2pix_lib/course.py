"""Where the course's own files are: the notebooks, the results they read, the shipped weights.

Two ways to have the course:
- a clone of the repository: the package sits in it, beside notebooks/, results/ and weights/;
- a plain `pip install` of the wheel: the build copies those three folders into the package
  (pix2pix_lib/course/, see setup.py), and `python -m pix2pix_lib notebooks DIR` copies the
  notebooks and results out to a folder of the user's, as d2l's package does.

A notebook finds its folders (data, runs, results) from `course_root()`: PIX2PIX_COURSE_DIR when set, the
clone, a folder made by `notebooks DIR`, or else the current folder. It takes its sizes from
`settings("03")`: the course's sizes, or tiny ones in fast mode (PIX2PIX_FAST=1, the test suite), as
values, so a lesson's code is the same in both. `machine()` says what it runs on; `keep_on_drive()`
(Colab, optional) keeps datasets and runs on Google Drive.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import TrainConfig, fast_mode, preset
from .files import OWNER_MARKER, PACKAGE_DIR, RefusedError, atomic_output_dir, read_json, shown
from .runtime import auto_precision, select_device

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


# ---------------------------------------------------------------- a lesson's sizes, full or fast

@dataclass(frozen=True)
class Settings:
    """One notebook's sizes. Its own numbers read as attributes (`settings("02").skip_steps`).

    data: the keyword arguments of `ensure_openmoji_dataset` ({}: the 256 px course set).
    config, run: the run the notebook trains and its folder (fast mode: a new temporary folder, so
    a test run always starts afresh and never resumes a student's run).
    retrain: a study (notebooks 04, 06) is trained here, not read from results/: PIX2PIX_RECOMPUTE=1,
    or fast mode's tiny version of the same runs; study_dir, study_base, study_options go with it.
    """

    lesson: str
    fast: bool
    data: dict = field(default_factory=dict)
    config: TrainConfig | None = None
    run: Path | None = None
    numbers: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        numbers = self.__dict__.get("numbers", {})
        if name in numbers:
            return numbers[name]
        raise AttributeError(f"settings({self.lesson!r}) has no {name!r}; it has {', '.join(sorted(numbers))}")


def _fresh(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"pix2pix-{prefix}-"))


def _fast_data(root: Path, name: str = "openmoji-64") -> dict:
    return {"out_dir": root / "runs" / "fast-data" / name, "size": 64, "limit": 48}


def _study(lesson: str, fast: bool, root: Path, name: str, base: dict, runs: str, **full_options) -> dict:
    """A study's numbers: read the committed results, or retrain (PIX2PIX_RECOMPUTE=1; fast: tiny, in a temp folder)."""
    if fast:
        out = _fresh(lesson)
        return {"retrain": True, "study_dir": out, "results_path": out / f"{name}.json", "study_base": base,
                "study_options": {"budget_images": 4, "max_val_images": 4, "progress": False, "perceptual": False}}
    # results_path None: the committed results/NAME.json, which the notebook names (a recomputation rewrites it)
    return {"retrain": os.environ.get("PIX2PIX_RECOMPUTE", "") == "1", "study_dir": root / "runs" / runs,
            "results_path": None, "study_base": {}, "study_options": full_options}


def settings(lesson: str, root: str | Path | None = None) -> Settings:
    """The sizes of notebook `lesson` ("01" ... "07") under `root` (default: course_root())."""
    fast, root = fast_mode(), Path(root) if root is not None else course_root()
    tiny = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=4, max_val_batches=1, n_samples=4)
    pick = lambda small, full: small if fast else full  # noqa: E731 - the one place fast mode decides
    data = _fast_data(root) if fast else {}
    if lesson == "01":
        # mask_views: views of one carvana car masked together (only where ../shared/data/carvana-90 exists)
        return Settings(lesson, fast, data, numbers={"demo": pick(128, 256), "mask_views": pick(6, 16)})
    if lesson == "02":
        return Settings(lesson, fast, numbers={"skip_size": pick(64, 128), "skip_ngf": pick(16, 64),
                                               "skip_steps": pick(100, 60), "d_size": pick(64, 256),
                                               "d_steps": pick(30, 50)})
    if lesson == "03":
        # A class period: 10 minutes of training at most (the quick preset's 5 epochs take about that on the
        # course's 2-core CPU); the monitor draws every 30 s. Fast mode: reports as often as it can.
        config = pick(preset("quick", **tiny, epochs=1, epochs_decay=1, max_steps_per_epoch=3, max_minutes=1),
                      preset("quick", max_minutes=10))
        return Settings(lesson, fast, data, config, pick(_fresh("quick"), root / "runs" / "quick"),
                        numbers={"demo_steps": pick(5, 20), "report_seconds": pick(0.01, 30.0)})
    if lesson == "04":
        config = pick(preset("quick", **tiny, epochs=2, epochs_decay=1, max_steps_per_epoch=6, log_every=2),
                      preset("quick", image_size=64, epochs=3, epochs_decay=2, max_steps_per_epoch=150,
                             n_samples=6, log_every=10))
        tiny_study = dict(image_size=64, ngf=8, ndf=8, batch_size=2, precision="fp32", device="cpu")
        return Settings(lesson, fast, data | pick({"progress": False}, {}), config,
                        pick(_fresh("lab"), root / "runs" / "lab"),
                        numbers={"run_03": settings("03", root).run, "toy_steps": pick(400, 2000),
                                 "dirac_steps": pick(300, 600), "tone_size": pick(64, 128),
                                 **_study(lesson, fast, root, "failures", pick(tiny_study, {}), "failures", budget_images=6000)})
    if lesson == "05":
        return Settings(lesson, fast, numbers={"run_03": settings("03", root).run})
    if lesson == "06":
        # 128 px in fast mode too: the 286x286 discriminator needs that much image to give an output.
        tiny_study = dict(ngf=8, ndf=8, batch_size=2, precision="fp32", device="cpu")
        return Settings(lesson, fast, pick(_fast_data(root, "openmoji-64-nb05") | {"progress": False}, {}),
                        numbers=_study(lesson, fast, root, "ablations", pick(tiny_study, {}), "experiments"))
    if lesson == "07":
        # The shipped 400 shoe pairs at 64 px: ~57 images/s measured with one thread of the course's 2-core CPU
        # (~80-100 with both, estimated), so 100 epochs take 7-9 minutes; the budget stops a slower machine at 10.
        # A GPU, when the notebook's flag says so: the paper preset at 256 px on the whole edges2shoes.
        config = pick(preset("quick", **tiny, epochs=1, epochs_decay=1, max_steps_per_epoch=2, max_minutes=1,
                             precise_bn_batches=1),
                      preset("quick", image_size=64, epochs=50, epochs_decay=50, n_samples=4, max_minutes=10))
        gpu = preset("paper", image_size=256, batch_size=16, num_workers=8, epochs=8, epochs_decay=7,
                     max_minutes=pick(1, 45), max_steps_per_epoch=pick(2, None))
        return Settings(lesson, fast, config=config, run=pick(_fresh("shoes"), root / "runs" / "shoes-64"),
                        numbers={"pairs_dir": pick(_fresh("shoe-pairs"), root / "data" / "shoes-64"),
                                 "train_pairs": pick(8, None), "report_seconds": pick(0.01, 30.0),
                                 "gpu_config": gpu, "gpu_run": pick(_fresh("shoes-256"), root / "runs" / "shoes-256")})
    raise ValueError(f"no lesson {lesson!r}: the notebooks are 01 to 07")


PRECISION_WORDS = {"bf16": "bf16 autocast", "fp16": "fp16 autocast with a gradient scaler", "fp32": "fp32"}


def machine(config: TrainConfig | None = None) -> str:
    """One line: the device a notebook runs on and the numeric precision of its training (a config's)."""
    device = select_device(config.device if config is not None else "auto")
    auto = auto_precision(device)
    where = f"{device.type}" + (f" ({os.cpu_count()} cores)" if device.type == "cpu" else "")
    if config is None:  # a notebook that trains no run: its own computations are plain fp32
        text = f"runs on {where} in fp32; a training run here would use {PRECISION_WORDS[auto]} (precision='auto')"
    else:
        text = f"runs on {where}; its training uses {PRECISION_WORDS[auto if config.precision == 'auto' else config.precision]}"
    if device.type == "cpu" and auto == "fp32":
        text += " (this CPU has no native bf16: training runs in fp32, about 1.4x slower than with it)"
    return text + (" | fast mode (PIX2PIX_FAST=1): tiny sizes, the same code" if fast_mode() else "")


def keep_on_drive(folder: str | Path = "/content/drive/MyDrive/pix2pix-course") -> Path:
    """Colab, optional: datasets and runs on Google Drive, so a run resumes after a runtime reset.

    Mounts Drive (Colab asks for permission once), sends datasets to `folder`/data
    (PIX2PIX_DATA_DIR) and makes the course's runs/ a link to `folder`/runs. A runs/ that already
    holds runs is refused, untouched: move them to Drive first.
    """
    colab = sys.modules.get("google.colab")  # loaded in every Colab kernel (the setup cell's test, too)
    if colab is None:
        raise RuntimeError("keep_on_drive is for Colab (google.colab is not loaded here); nothing was changed")
    colab.drive.mount("/content/drive")
    folder = Path(folder)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    runs = course_root() / "runs"
    if not (runs.is_symlink() and runs.resolve() == (folder / "runs").resolve()):
        if runs.is_symlink() or (runs.exists() and (not runs.is_dir() or any(runs.iterdir()))):
            raise RefusedError(f"{shown(runs)}: holds runs already; move them to {shown(folder / 'runs')} "
                               "first (nothing was changed)")
        if runs.exists():
            runs.rmdir()  # empty
        runs.symlink_to(folder / "runs", target_is_directory=True)
    os.environ["PIX2PIX_DATA_DIR"] = str(folder / "data")
    return folder
