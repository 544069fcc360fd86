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


def test_settings_are_values_the_full_course_or_tiny_in_fast_mode(tmp_path, monkeypatch):
    from pix2pix_lib.config import preset

    monkeypatch.delenv("PIX2PIX_RECOMPUTE", raising=False)
    monkeypatch.setenv("PIX2PIX_FAST", "0")
    full = course.settings("03", tmp_path)
    assert full.run == tmp_path / "runs" / "quick" and full.data == {} and full.demo_steps == 20
    assert full.config.image_size == preset("quick").image_size and not full.fast
    gallery = course.settings("04", tmp_path)
    assert not gallery.retrain and gallery.results_path is None and gallery.study_options == {"budget_images": 6000}
    assert gallery.run_03 == full.run  # notebook 04 reads notebook 03's run
    monkeypatch.setenv("PIX2PIX_RECOMPUTE", "1")
    assert course.settings("06", tmp_path).retrain and course.settings("06", tmp_path).study_dir == tmp_path / "runs" / "experiments"
    monkeypatch.setenv("PIX2PIX_FAST", "1")
    fast = course.settings("03", tmp_path)
    assert fast.fast and fast.config.image_size == 32 and fast.data["limit"] == 48 and fast.demo_steps == 5
    again = course.settings("03", tmp_path).run
    assert fast.run.is_dir() and not any(fast.run.iterdir()) and again != fast.run  # always a fresh, empty folder
    assert course.settings("06", tmp_path).results_path.parent.is_dir()  # fast mode's tiny study: a temp folder
    with pytest.raises(AttributeError, match="demo_steps"):
        course.settings("03", tmp_path).no_such_size
    with pytest.raises(ValueError, match="01 to 07"):
        course.settings("08")


def test_machine_says_device_and_precision(monkeypatch):
    from pix2pix_lib import runtime
    from pix2pix_lib.config import TrainConfig

    monkeypatch.setenv("PIX2PIX_FAST", "0")
    assert course.machine(TrainConfig(device="cpu", precision="bf16")).startswith("runs on cpu (")
    assert "its training uses bf16 autocast" in course.machine(TrainConfig(device="cpu", precision="bf16"))
    assert "its training uses fp32" in course.machine(TrainConfig(device="cpu", precision="fp32"))
    monkeypatch.setattr(course, "auto_precision", lambda device: "fp32")  # a laptop without native bf16
    line = course.machine()
    assert "in fp32; a training run here would use fp32" in line and "no native bf16" in line and "fast mode" not in line
    monkeypatch.setattr(course, "auto_precision", runtime.auto_precision)
    monkeypatch.setenv("PIX2PIX_FAST", "1")
    assert "fast mode" in course.machine(TrainConfig(device="cpu"))


def test_keep_on_drive_links_runs_and_sends_datasets_to_drive(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError, match="for Colab"):  # anywhere else: one line, nothing changed
        course.keep_on_drive(tmp_path / "MyDrive")
    assert not (tmp_path / "MyDrive").exists()
    mounted = []
    drive = types.ModuleType("google.colab.drive")
    drive.mount = mounted.append
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    monkeypatch.setenv("PIX2PIX_COURSE_DIR", str(tmp_path / "course"))
    monkeypatch.setenv("PIX2PIX_DATA_DIR", "unchanged")  # monkeypatch restores it after the test
    (tmp_path / "course" / "runs").mkdir(parents=True)  # empty: replaced by the link
    on_drive = tmp_path / "MyDrive" / "pix2pix-course"
    for _ in range(2):  # a second call (a re-run cell) changes nothing
        assert course.keep_on_drive(on_drive) == on_drive
        runs = tmp_path / "course" / "runs"
        assert runs.is_symlink() and runs.resolve() == (on_drive / "runs").resolve()
    assert mounted == ["/content/drive"] * 2
    import os
    assert os.environ["PIX2PIX_DATA_DIR"] == str(on_drive / "data")
    (tmp_path / "other" / "runs" / "quick").mkdir(parents=True)  # a course folder with runs of its own
    monkeypatch.setenv("PIX2PIX_COURSE_DIR", str(tmp_path / "other"))
    with pytest.raises(RefusedError, match="holds runs already"):
        course.keep_on_drive(on_drive)
    assert (tmp_path / "other" / "runs" / "quick").is_dir() and not (tmp_path / "other" / "runs").is_symlink()


def test_every_lesson_imports_only_the_front_door_and_has_no_fast_mode_branch():
    import re

    for name, nb in _notebooks().items():
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        setup, imports, lessons = code[0], code[1], code[2:]
        assert len(setup.splitlines()) <= 13 and 'REPOSITORY = "' in setup, name
        assert "import pix2pix_lib as p2p" in imports and "p2p.course.machine(" in imports, name
        assert "# p2p.course.keep_on_drive()" in imports, name  # the documented, optional Drive line
        for source in [imports, *lessons]:
            for line in source.splitlines():
                if re.match(r"\s*(import|from)\s+pix2pix_lib", line) and line.strip() != "import pix2pix_lib as p2p":
                    # 02: models.summary until the models package makes it reachable as p2p.models.summary
                    assert name.startswith("02") and line.startswith("import pix2pix_lib.models.summary"), (name, line)
            assert not re.search(r"\bFAST\b|fast_mode|PIX2PIX_FAST", source), (name, source[:200])


def test_the_photo_lesson_trains_on_the_shipped_shoes_for_ten_minutes_or_a_handful_of_steps(tmp_path, monkeypatch):
    # Notebook 07's sizes: the 400 shipped shoe pairs at 64 px within a 10-minute budget; on a GPU, when the
    # notebook's flag says so, the paper preset at 256 px; fast mode: a handful of pairs and steps.
    from pix2pix_lib.data.paired import split_pair_array
    from pix2pix_lib.imaging import open_image

    shoes = ROOT / "pix2pix_lib" / "assets" / "shoes"
    train = sorted((shoes / "train").glob("*_AB.jpg"))
    held_out = {p.name for p in (shoes / "val").glob("shoe_*_AB.jpg")}
    assert len(train) >= 300 and all(p.name.startswith("shoe_") for p in train)  # shoes only, no handbags
    assert all(1 <= int(p.name.split("_")[1]) <= 1000 for p in train)  # files 1-1000 of the set are the shoes
    assert held_out and not held_out & {p.name for p in train}  # the lesson validates on shoes it never trains on
    assert sum(p.stat().st_size for p in train) < 2_000_000  # keeps the wheel small
    a, b = split_pair_array(__import__("numpy").asarray(open_image(train[0]).convert("RGB")))
    assert a.shape == b.shape == (64, 64, 3)
    assert "train/" in (shoes / "TERMS.txt").read_text() and "non-commercial" in (shoes / "TERMS.txt").read_text()

    monkeypatch.setenv("PIX2PIX_FAST", "0")
    full = course.settings("07", tmp_path)
    assert (full.config.image_size, full.config.max_minutes, full.config.total_epochs) == (64, 10, 100)
    assert full.train_pairs is None and full.run == tmp_path / "runs" / "shoes-64"  # all pairs; a re-run trains on
    assert full.pairs_dir == tmp_path / "data" / "shoes-64" and full.report_seconds == 30
    assert (full.gpu_config.image_size, full.gpu_config.ngf, full.gpu_config.batch_size) == (256, 64, 16)
    monkeypatch.setenv("PIX2PIX_FAST", "1")
    fast = course.settings("07", tmp_path)
    assert fast.train_pairs <= 8 and fast.config.max_steps_per_epoch <= 2 and fast.config.image_size == 32
    assert fast.run.is_dir() and not any(fast.run.iterdir()) and not any(fast.pairs_dir.iterdir())
    assert course.settings("01", tmp_path).mask_views >= 5  # the studio from the other views needs five
