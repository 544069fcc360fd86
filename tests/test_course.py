"""Where a notebook keeps its files (course_root) and `python -m pix2pix_lib notebooks DIR`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pix2pix_lib import cli, course
from pix2pix_lib.files import OWNER_MARKER, RefusedError, read_json

ROOT = Path(__file__).resolve().parents[1]


def test_course_root_is_the_clone_from_anywhere_inside_it_and_the_current_folder_elsewhere(tmp_path, monkeypatch):
    assert course.course_root(ROOT / "notebooks") == ROOT
    assert course.course_root(ROOT / "pix2pix_lib" / "models") == ROOT
    # Outside any course, an editable install still finds its clone ...
    assert course.course_root(tmp_path) == ROOT
    # ... and a plain pip install (no clone beside the package) uses the folder the notebook runs in.
    monkeypatch.setattr(course, "CLONE", tmp_path / "site-packages")
    assert course.course_root(tmp_path) == tmp_path.resolve()


def test_notebooks_verb_copies_the_course_and_course_root_finds_the_copy(tmp_path, capsys):
    dest = tmp_path / "my-course"
    assert cli.main(["notebooks", str(dest)]) == 0
    assert str(dest) in capsys.readouterr().out
    names = sorted(p.name for p in (dest / "notebooks").iterdir())
    assert names == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) and len(names) >= 6
    assert (dest / "results" / "ablations.json").read_bytes() == (ROOT / "results" / "ablations.json").read_bytes()
    assert read_json(dest / OWNER_MARKER)["kind"] == "course"
    assert course.course_root(dest / "notebooks") == dest.resolve()


def test_notebooks_verb_never_writes_into_a_folder_that_holds_anything(tmp_path, capsys):
    dest = tmp_path / "course"
    dest.mkdir()
    (dest / "my_answers.ipynb").write_text("mine")
    assert cli.main(["notebooks", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and str(dest) in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in dest.iterdir()] == ["my_answers.ipynb"]  # untouched
    cli.main(["notebooks", str(tmp_path / "fresh")])
    with pytest.raises(RefusedError, match="not empty"):  # not even our own copy: runs and edits live there
        course.copy_course(tmp_path / "fresh")


def test_shipped_weights_come_from_the_clone_or_the_wheel(monkeypatch, tmp_path):
    assert course.course_files("weights") == ROOT / "weights"
    bundled = tmp_path / "pix2pix_lib" / "course"
    (bundled / "weights").mkdir(parents=True)
    monkeypatch.setattr(course, "CLONE", tmp_path / "site-packages")
    monkeypatch.setattr(course, "BUNDLED", bundled)
    assert course.course_files("weights") == bundled / "weights"
    with pytest.raises(ValueError, match="no course folder 'data'"):
        course.course_files("data")
