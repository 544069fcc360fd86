"""Write each notebook's Colab badge and setup cell from the one repository URL in pyproject.toml.

    python tools/notebook_links.py          # rewrite the notebooks (after changing [project.urls])
    python tools/notebook_links.py --check  # exit 1 if a notebook is out of step (the test suite runs this)

The badge goes under the notebook's title; the setup cell (id "colab-setup") is the first code
cell. In Colab the cell clones the course (once), installs it (once: it asks whether pix2pix_lib can
be imported, which it cannot from /content or the notebooks folder until it is installed), and
changes to its notebooks folder with an absolute path, so re-running it after a runtime restart is
all a restart needs. Anywhere else it does nothing. Keeping runs on Google Drive is one optional line
of each notebook's import cell (`p2p.course.keep_on_drive()`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = "[0-9][0-9]_*.ipynb"  # as pix2pix_lib.course.NOTEBOOKS; this tool needs no torch, so no import
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
SETUP_ID = "colab-setup"
SETUP = '''\
# Setup. Colab: clone and install the course (once, about a minute) and work in its notebooks folder;
# run it again after a runtime restart. Anywhere else (a clone, a pip install) it does nothing.
import importlib.util, os, subprocess, sys

if "google.colab" in sys.modules:
    REPOSITORY = "{url}"  # from pyproject.toml [project.urls]
    CLONE = "/content/{name}"
    if not os.path.isdir(CLONE):
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPOSITORY, CLONE], check=True)
    if importlib.util.find_spec("pix2pix_lib") is None:  # not installed (the clone's source is not on the path)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", CLONE], check=True)
        importlib.invalidate_caches()
    os.chdir(f"{{CLONE}}/notebooks")'''


def repository_url() -> str:
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    return urls["Repository"].rstrip("/")


def badge(url: str, notebook: str) -> str:
    path = re.sub(r"^https://github\.com/", "", url)
    return f"[![Open in Colab]({BADGE_IMAGE})](https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook})"


def updated(nb: dict, name: str, url: str) -> dict:
    cells = nb["cells"]
    title = cells[0]
    lines = "".join(title["source"]).split("\n")
    lines = [line for line in lines if BADGE_IMAGE not in line]
    lines.insert(1, "")  # under the "# NN · title" line
    lines.insert(2, badge(url, name))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    title["source"] = text.splitlines(keepends=True)
    setup_source = SETUP.format(url=url, name=url.rsplit("/", 1)[-1]).splitlines(keepends=True)
    setup = next((c for c in cells if c.get("id") == SETUP_ID), None)
    if setup is None:
        setup = {"cell_type": "code", "execution_count": None, "id": SETUP_ID, "metadata": {}, "outputs": []}
        cells.insert(1, setup)
    setup["source"] = setup_source
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of step")
    args = parser.parse_args()
    url = repository_url()
    stale = []
    for path in sorted((ROOT / "notebooks").glob(NOTEBOOKS)):
        before = path.read_text()
        nb = updated(json.loads(before), path.name, url)
        after = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if after != before:
            stale.append(path.name)
            if not args.check:
                path.write_text(after)
    if args.check and stale:
        print(f"out of step with pyproject.toml's Repository URL: {', '.join(stale)} "
              "(run python tools/notebook_links.py)")
        return 1
    print(("rewrote " + ", ".join(stale)) if stale else "every notebook is in step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
