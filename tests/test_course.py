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


def _notebooks() -> dict:
    import json
    return {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "notebooks").glob(course.NOTEBOOKS))}


def test_every_notebook_gives_study_and_machine_time_and_ends_with_questions_and_hidden_answers(tmp_path):
    import re
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import make_student

    study = 0
    for name, nb in _notebooks().items():
        text = "".join(nb["cells"][0]["source"])
        minutes = re.search(r"\*\*Study time:\*\* ~(\d+) minutes", text)
        assert minutes and "**Machine time:**" in text, name
        study += int(minutes.group(1))
        answers = [c for c in nb["cells"] if make_student.is_model_answers(c)]
        questions = [c for c in nb["cells"] if "".join(c["source"]).startswith("## Questions")]
        assert len(answers) == len(questions) == 1, name
        asked = re.findall(r"^(\d+)\. ", "".join(questions[0]["source"]), re.M)
        answered = re.findall(r"^(\d+)\. ", "".join(answers[0]["source"]), re.M)
        assert len(asked) >= 4 and asked == answered, name  # one model answer per question
        student = make_student.student_version(nb, name)
        assert not any(make_student.is_model_answers(c) for c in student["cells"])
        assert any("".join(c["source"]).startswith("## Questions") for c in student["cells"])
    assert 5 * 60 <= study <= 7 * 60, study  # the "a student needs about 5-7 hours"


def test_the_architecture_figure_is_drawn_from_the_librarys_own_networks(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import architecture_figure

    g_rows, d_rows = architecture_figure.network_rows()
    assert sum(r.params for r in g_rows) == 54_413_955 and sum(r.params for r in d_rows) == 2_768_705
    assert [r.out_shape[1] for r in g_rows if r.name.startswith("enc")] == [64, 128, 256, 512, 512, 512, 512, 512]
    out = architecture_figure.draw(tmp_path / "architecture.png")
    committed = ROOT / "results" / "architecture.png"
    assert out.stat().st_size > 20_000 and committed.is_file() and committed.stat().st_size < 300_000
