"""Build hook (everything else is in pyproject.toml): the wheel carries the course itself.

A plain `pip install` gets no clone, so the wheel holds the notebooks, the results they read and
the shipped weights under pix2pix_lib/course/ (pix2pix_lib/course.py finds them there, and
`python -m pix2pix_lib notebooks DIR` copies the notebooks out). An editable install reads them
from the clone instead, so nothing is copied for it.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# The shipped weights by name: a user's own export into weights/ must not ride along.
COURSE = {"notebooks": ["[0-9][0-9]_*.ipynb"], "results": ["*.json", "*.png"],
          "weights": ["openmoji_doodle_256.pt", "shoes_doodle_128.pt", "cars_doodle_128.pt",
                      "openmoji_doodle_256.md", "shoes_doodle_128.md", "cars_doodle_128.md", "README.md"]}


class BuildPyWithCourse(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pix2pix_lib" / "course"
        shutil.rmtree(target, ignore_errors=True)  # a reused build/lib keeps renamed notebooks otherwise
        for folder, patterns in COURSE.items():
            files = sorted({p for pattern in patterns for p in (HERE / folder).glob(pattern)})
            missing = [pattern for pattern in patterns if not any((HERE / folder).glob(pattern))]
            if missing:
                raise SystemExit(f"{HERE / folder}: {missing} not found; the wheel would lack part of the course")
            (target / folder).mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copy2(path, target / folder / path.name)


setup(cmdclass={"build_py": BuildPyWithCourse})
