"""The verb that hands out the course: notebooks (a pip-installed course's notebooks, copied into a folder).

Apart from the data verbs, so that it imports the course's paths and nothing of the datasets.
"""

from __future__ import annotations

import argparse

from ..course import copy_course
from ..files import shown


def run_notebooks(args: argparse.Namespace) -> int:
    dest = copy_course(args.dir)
    print(f"{shown(dest)}: the notebooks and the results they read; open {shown(dest / 'notebooks')} in Jupyter")
    return 0


def add_notebooks(subparsers) -> None:
    p = subparsers.add_parser(
        "notebooks", help="copy the course's notebooks into a folder of yours (for a pip install)",
        description="Copy the notebooks, and the committed results they read, into DIR (new or empty), "
                    "so that a pip-installed course runs without a clone. The notebooks keep their "
                    "data, runs and results in DIR; the shipped weights stay in the package.")
    p.add_argument("dir", help="a new or empty folder")
    p.set_defaults(func=run_notebooks)
