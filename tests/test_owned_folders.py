"""A folder the library made is not all the library's (issue #20, part 1): its marker lists what it wrote.

A rebuild replaces only listed entries: a user's other files move into the new build, a listed file
the user edited makes it refuse; "not built" never means "delete"; a dataset being read is not
swapped; splits that `train` would refuse are refused at the start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pix2pix_lib
from pix2pix_lib.cli import main
from pix2pix_lib.data import build_openmoji_dataset, ensure_openmoji_dataset
from pix2pix_lib.files import FolderBusyError, RefusedError, atomic_output_dir, read_json

from conftest import write_car_photos

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".made-by-pix2pix_lib"


def _build(out: Path, files: dict[str, bytes], kind: str = "dataset") -> Path:
    with atomic_output_dir(out, kind=kind) as tmp:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


BUILD = {"train/a.png": b"a1", "train/b.png": b"b1", "manifest.json": b"{}"}
MINE = {"notes.txt": b"my notes", "my_photos/cat.jpg": b"cat", "train/extra.png": b"my pair", "thesis.tex": b"2 years"}


# --- 1. the marker lists what was written; only that is replaced ------------------------------------
def test_the_marker_lists_every_file_the_build_wrote_with_its_content(tmp_path):
    out = _build(tmp_path / "set", BUILD)
    listed = read_json(out / MARKER)["files"]
    assert set(listed) == {"train", "train/a.png", "train/b.png", "manifest.json"} and listed["train"] == "dir"
    assert listed["train/a.png"] != listed["train/b.png"] and len(listed["train/a.png"]) == 32


def test_a_rebuild_moves_the_users_files_into_the_new_build_unchanged(tmp_path, caplog):
    out = _build(tmp_path / "set", BUILD)
    for rel, data in MINE.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="pix2pix_lib"):
        _build(out, {"train/a.png": b"a2", "val/c.png": b"c2", "manifest.json": b"{}"})
    assert _tree(out) == {"train/a.png": b"a2", "val/c.png": b"c2", "manifest.json": b"{}", **MINE}
    assert set(read_json(out / MARKER)["files"]) == {"train", "train/a.png", "val", "val/c.png", "manifest.json"}
    kept = [r.getMessage() for r in caplog.records if "kept" in r.getMessage()]
    assert len(kept) == 1 and "notes.txt" in kept[0] and "train/extra.png" in kept[0] and "\n" not in kept[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # nothing left beside it


def test_an_edited_listed_file_or_a_name_the_build_writes_makes_the_rebuild_refuse(tmp_path):
    out = _build(tmp_path / "set", BUILD)
    (out / "train" / "a.png").write_bytes(b"retouched by hand")
    before = _tree(out)
    with pytest.raises(RefusedError, match=r"train/a\.png was made by an earlier run .* changed since"):
        _build(out, BUILD)
    assert _tree(out) == before
    (out / "train" / "a.png").write_bytes(b"a1")  # edit undone; now the user's file has the next build's name
    (out / "train" / "new.png").write_bytes(b"mine")
    with pytest.raises(RefusedError, match=r"train/new\.png here is not from the earlier build"):
        _build(out, {**BUILD, "train/new.png": b"built"})
    assert (out / "train" / "new.png").read_bytes() == b"mine" and _tree(out)["train/a.png"] == b"a1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_old_markers_and_manifests_keep_working_and_never_cover_a_users_file(tmp_path, capsys):
    old = _build(tmp_path / "old", BUILD)
    (old / MARKER).write_text(json.dumps({"made_by": "pix2pix_lib", "kind": "dataset"}))  # before the list
    _build(old, {"train/z.png": b"z"})  # holds only what a build writes: replaced as before
    assert _tree(old) == {"train/z.png": b"z"}
    (old / MARKER).write_text(json.dumps({"made_by": "pix2pix_lib", "kind": "dataset"}))
    (old / "notes.txt").write_text("mine")
    with pytest.raises(RefusedError, match="older version of this library"):
        _build(old, BUILD)
    assert (old / "notes.txt").read_text() == "mine"
    legacy = tmp_path / "legacy"  # an OpenMoji build from before the marker, one extra pair added
    (legacy / "train").mkdir(parents=True)
    (legacy / "train" / "1F600.png").write_bytes(b"built")
    (legacy / "train" / "mine.png").write_bytes(b"a pair of mine")
    (legacy / "manifest.json").write_text(json.dumps({"name": "openmoji-line2color", "counts": {"train": 1}}))
    assert main(["build-openmoji", "--out", str(legacy), "--size", "16", "--limit", "3"]) == 2
    assert "did not make" in _error_line(capsys) and (legacy / "train" / "mine.png").is_file()
    (legacy / "train" / "mine.png").unlink()  # now exactly what such a build wrote: it is rebuilt
    build_openmoji_dataset(legacy, size=16, limit=3, progress=False, workers=1)
    assert read_json(legacy / MARKER)["files"] and read_json(legacy / "manifest.json")["size"] == 16


def test_a_killed_swap_is_settled_by_the_next_build_and_keeps_the_users_files(tmp_path):
    out = _build(tmp_path / "set", BUILD)
    (out / "notes.txt").write_text("mine")
    moved = tmp_path / ".set.abcd1234.old.partial"  # killed between moving the old folder aside and the swap
    out.rename(moved)
    _build(out, {"train/a.png": b"a3"})
    assert _tree(out) == {"train/a.png": b"a3", "notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_prepare_keeps_a_users_notes_and_pairs(tmp_path, capsys):
    images, masks = write_car_photos(tmp_path / "photos", tmp_path / "masks")
    args = ["prepare", "--images", str(images), "--masks", str(masks), "--val-cars", "1", "--size", "16",
            "--out", str(tmp_path / "pairs")]
    assert main(args) == 0
    (tmp_path / "pairs" / "NOTES.md").write_text("mine")
    (tmp_path / "pairs" / "train" / "extra.png").write_bytes(b"my pair")
    assert main([*args[:-4], "--size", "24", *args[-2:]]) == 0
    assert "kept NOTES.md, train/extra.png" in capsys.readouterr().err
    assert (tmp_path / "pairs" / "NOTES.md").read_text() == "mine"
    assert (tmp_path / "pairs" / "train" / "extra.png").read_bytes() == b"my pair"
    assert json.loads((tmp_path / "pairs" / "manifest.json").read_text())["size"] == 24


def test_make_student_keeps_a_rubric_and_refuses_over_an_edited_notebook(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_student
    finally:
        sys.path.remove(str(ROOT / "tools"))
    out = tmp_path / "student"
    assert make_student.main(["--out", str(out)]) == 0
    (out / "RUBRIC.md").write_text("grading")
    assert make_student.main(["--out", str(out)]) == 0
    assert (out / "RUBRIC.md").read_text() == "grading"
    notebook = sorted(out.glob("*.ipynb"))[0]
    notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [{"cell_type": "markdown", '
                                                     '"metadata": {}, "source": ["my hint"]}, ', 1))
    edited = notebook.read_bytes()
    capsys.readouterr()
    assert make_student.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and notebook.name in err and "changed since" in err
    assert notebook.read_bytes() == edited and (out / "RUBRIC.md").read_text() == "grading"


def test_experiments_clear_a_stale_run_but_keep_the_users_files(tiny_pairs, tmp_path, monkeypatch):
    from pix2pix_lib.experiments import VARIANTS, base_config, run_experiments

    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(tmp_path / "none.pth"))
    monkeypatch.setenv("PIX2PIX_LPIPS_WEIGHTS", str(tmp_path / "none.pth"))
    base = base_config(image_size=32, ngf=8, ndf=8, batch_size=4, precision="fp32", device="cpu")
    only = [v for v in VARIANTS if v.name == "L1 only"]
    study = tmp_path / "study"
    run_experiments(tiny_pairs, study, base=base, budget_images=8, progress=False, variants=only)
    run = study / "l1-only"
    (run / "NOTES.txt").write_text("what I saw")
    (run / "my_figures").mkdir()
    (run / "my_figures" / "fig.png").write_bytes(b"figure")
    (run / "samples" / "circled.png").write_bytes(b"mine")
    run_experiments(tiny_pairs, study, base=base, budget_images=8, progress=False, variants=only, recompute=True)
    assert (run / "NOTES.txt").read_text() == "what I saw" and (run / "my_figures" / "fig.png").read_bytes() == b"figure"
    assert (run / "samples" / "circled.png").read_bytes() == b"mine" and (run / "checkpoint.pt").is_file()


# --- 2. "not built" never means "delete" -------------------------------------------------------------
def test_ensure_reports_an_extra_pair_and_never_rebuilds_over_it(tmp_path, caplog):
    out = ensure_openmoji_dataset(tmp_path / "openmoji", size=16, limit=6, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    pair = next((out / "train").glob("*.png"))
    (out / "train" / "x.png").write_bytes(pair.read_bytes())
    with caplog.at_level(logging.WARNING, logger="pix2pix_lib"):
        ensure_openmoji_dataset(out, size=16, limit=6, progress=False)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp and (out / "train" / "x.png").is_file()
    assert any("built; 1 file(s) here are not from the build (train/x.png): kept" in r.getMessage()
               for r in caplog.records)
    pair.unlink()  # a listed file gone: rebuilt, and the extra pair stays
    ensure_openmoji_dataset(out, size=16, limit=6, progress=False)
    assert pair.is_file() and (out / "train" / "x.png").is_file()
    assert (out / "manifest.json").stat().st_mtime_ns != stamp


# --- 3. a dataset being read is not swapped ----------------------------------------------------------
_READER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("folders", sys.argv[2])  # files.reading, without importing torch
folders = importlib.util.module_from_spec(spec)
spec.loader.exec_module(folders)
with folders.reading(sys.argv[1]) as folder:
    print(os.stat(folder).st_ino, flush=True)
    time.sleep(60)
"""


def _reader(folder: Path) -> subprocess.Popen:
    module = Path(pix2pix_lib.__file__).parent / "folders.py"
    return subprocess.Popen([sys.executable, "-c", _READER, str(folder), str(module)], stdout=subprocess.PIPE, text=True)


def test_a_rebuild_is_refused_while_another_process_reads_the_dataset(tmp_path):
    out = _build(tmp_path / "set", BUILD)
    reader = _reader(out)
    try:
        assert int(reader.stdout.readline()) == os.stat(out).st_ino
        with pytest.raises(FolderBusyError, match=rf"a training \(pid {reader.pid}\) is reading this dataset"):
            _build(out, {"train/a.png": b"new"})
        assert _tree(out) == BUILD
    finally:
        reader.kill()
        reader.wait()
    _build(out, {"train/a.png": b"new"})  # the reader is gone: the lock went with it
    assert _tree(out) == {"train/a.png": b"new"}


def test_a_reader_that_starts_during_a_rebuild_waits_and_reads_the_new_folder(tmp_path):
    out = _build(tmp_path / "set", BUILD)
    with atomic_output_dir(out) as tmp:
        (tmp / "train").mkdir()
        (tmp / "train" / "a.png").write_bytes(b"new")
        reader = _reader(out)
        try:
            import select
            assert select.select([reader.stdout], [], [], 1.0)[0] == []  # blocked while the build runs
        except BaseException:
            reader.kill()
            raise
    try:
        assert int(reader.stdout.readline()) == os.stat(out).st_ino  # the new folder, not the old one
        with pytest.raises(FolderBusyError):
            _build(out, BUILD)
    finally:
        reader.kill()
        reader.wait()


# --- 4. splits train would refuse, and outputs written over each other ---------------------------------
def test_splits_that_train_refuses_are_refused_before_anything_is_written(tmp_path, capsys):
    assert main(["build-openmoji", "--out", str(tmp_path / "om"), "--size", "16", "--limit", "4",
                 "--val-fraction", "0"]) == 2
    assert "training needs" in _error_line(capsys)
    images, masks = tmp_path / "i", tmp_path / "m"
    images.mkdir()
    masks.mkdir()
    assert main(["prepare", "--images", str(images), "--masks", str(masks), "--val-cars", "0",
                 "--out", str(tmp_path / "p")]) == 2
    assert "training needs a validation split" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i", "m"]


def test_experiments_refuse_a_results_name_the_grid_would_overwrite(tiny_pairs, tmp_path):
    from pix2pix_lib.experiments import VARIANTS, base_config, run_experiments

    base = base_config(image_size=32, ngf=8, ndf=8, batch_size=4, precision="fp32", device="cpu")
    for name in ("x.png", "x.PNG"):
        with pytest.raises(ValueError, match=r"give a name ending in \.json"):
            run_experiments(tiny_pairs, tmp_path / "study", base=base, budget_images=8, variants=VARIANTS[:1],
                            results_path=tmp_path / name, progress=False, perceptual=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


# --- 5. names of a user's files stay on one line ------------------------------------------------------
def test_a_refusal_names_a_strange_folder_on_one_line(tmp_path):
    out = tmp_path / "a\nb\x1b[31m"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(RefusedError) as err:
        _build(out, BUILD)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value) and "a\\nb" in str(err.value)


def test_a_users_file_at_a_lock_name_is_refused_and_kept(tmp_path):
    from pix2pix_lib.files import exclusive_lock

    lock = tmp_path / ".data.lock"
    lock.write_text("USER DATA\n")
    with pytest.raises(RefusedError, match="someone else's where this library keeps its lock"):
        with exclusive_lock(lock):
            pass
    assert lock.read_text() == "USER DATA\n"
    lock.write_text("12345\n")  # a killed holder's pid: ours, taken over and removed after use
    with exclusive_lock(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()


def test_a_run_claims_only_the_exact_names_it_writes():
    from pix2pix_lib import experiments, runs
    from pix2pix_lib.folders import matches

    for writes in (runs.RUN_WRITES, experiments.RUN_WRITES):
        assert matches("samples/epoch_002.png", writes) and matches("verdicts/epoch_1000.pt", writes)
        for users in ("samples/epoch_002_annotated.png", "samples/epoch_2.png", "verdicts/epoch_003.pt.bak",
                      ".notes.tmp", "samples/.x.tmp"):
            assert not matches(users, writes), users
