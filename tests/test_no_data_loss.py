"""A command never destroys what it did not make (issue #11): its inputs, a user's folders, a run being
written, the previous checkpoint on a full disk. Hostile inputs made here."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import serve_files, write_car_photos
from pix2pix_lib import preprocess as pre
from pix2pix_lib import weights as weights_module
from pix2pix_lib import train
from pix2pix_lib.cli import main
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.files import FolderBusyError, RefusedError, atomic_output_dir, atomic_path
from hostile_inputs import TINY, TINY_ARGS, archive, doodle, error_line, snapshot, weights  # noqa: F401 (weights: a fixture)


def _photos(root: Path) -> tuple[Path, Path]:
    images, masks = write_car_photos(root / "train", root / "train_masks")
    (root / "notes.txt").write_text("my notes")
    return images, masks


@pytest.mark.parametrize("target", ["images", "parent"])
def test_prepare_never_replaces_its_inputs_or_their_folder(tmp_path, capsys, target):
    images, masks = _photos(tmp_path / "carvana")
    before = snapshot(tmp_path / "carvana")
    out = images if target == "images" else images.parent
    assert main(["prepare", "--images", str(images), "--masks", str(masks), "--out", str(out), "--val-cars", "1",
                 "--size", "16"]) == 2
    assert "input" in error_line(capsys)
    assert snapshot(tmp_path / "carvana") == before
    # A new folder works, and running it again replaces only its own earlier result.
    for _ in range(2):
        assert main(["prepare", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "pairs"),
                     "--val-cars", "1", "--size", "16"]) == 0
    assert snapshot(tmp_path / "carvana") == before


def test_build_openmoji_refuses_a_folder_of_user_files_or_a_file(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "edges2shoes" / "train").mkdir(parents=True)
    (data / "edges2shoes" / "train" / "1_AB.jpg").write_bytes(b"user data")
    (data / "README.md").write_text("mine")
    before = snapshot(data)
    assert main(["build-openmoji", "--out", str(data), "--size", "16", "--limit", "2"]) == 2
    assert "did not make" in error_line(capsys)
    assert main(["build-openmoji", "--out", str(data), "--size", "16", "--limit", "2", "--force"]) == 2
    assert snapshot(data) == before
    (tmp_path / "a-file").write_text("keep me")
    assert main(["build-openmoji", "--out", str(tmp_path / "a-file"), "--size", "16", "--limit", "2"]) == 2
    assert (tmp_path / "a-file").read_text() == "keep me"
    from pix2pix_lib.data import ensure_openmoji_dataset
    with pytest.raises(RefusedError, match="did not make"):
        ensure_openmoji_dataset(data, size=16, limit=2, progress=False)
    assert snapshot(data) == before
    # Its own earlier build is replaced as before.
    built = ensure_openmoji_dataset(data / "openmoji", size=16, limit=2, progress=False)
    assert main(["build-openmoji", "--out", str(built), "--size", "16", "--limit", "3", "--force"]) == 0
    assert (data / "README.md").read_text() == "mine"


def test_generate_never_overwrites_its_input_and_names_outputs_uniquely(tmp_path, weights, capsys):
    sketch = tmp_path / "drawing.png"
    doodle().save(sketch)
    original = sketch.read_bytes()
    assert main(["generate", "--weights", str(weights), str(sketch), "-o", str(sketch)]) == 2
    assert "input itself" in error_line(capsys) and sketch.read_bytes() == original

    folder = tmp_path / "sketches"
    folder.mkdir()
    for suffix in (".jpg", ".png", ".webp"):
        doodle().convert("RGB").save(folder / f"a{suffix}")
    before = snapshot(folder)
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(folder)]) == 2
    assert snapshot(folder) == before

    out = tmp_path / "out"
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_jpg.png", "a_png.png", "a_webp.png"]
    assert "coloured 3 of 3" in capsys.readouterr().out
    # Its own results may be replaced; someone else's file only with --force.
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(out)]) == 0
    mine = tmp_path / "mine.png"
    Image.new("RGB", (8, 8), "red").save(mine)
    assert main(["generate", "--weights", str(weights), str(sketch), "-o", str(mine)]) == 2
    assert "--force" in error_line(capsys) and Image.open(mine).size == (8, 8)
    assert main(["generate", "--weights", str(weights), str(sketch), "-o", str(mine), "--force"]) == 0
    assert Image.open(mine).size == (32, 32)


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from pix2pix_lib.files import exclusive_lock, mark_ours
with exclusive_lock(sys.argv[1]):  # what a training in progress holds, in the folder it has marked
    if len(sys.argv) > 2:
        mark_ours(Path(sys.argv[1]).parent, sys.argv[2])
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_training_into_a_folder_being_written_is_refused(tiny_pairs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run / ".lock"), "training run"], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusyError, match=rf"pid {holder.pid}"):
            train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
        assert not (run / train.CHECKPOINT).exists()
    finally:
        holder.kill()
        holder.wait()
    # Once the other process is gone (even killed), the folder can be trained into.
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    assert not (run / ".lock").exists()


def test_two_writers_of_one_file_get_their_own_temporary_files(tmp_path):
    target = tmp_path / "checkpoint.pt"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        torch.save({"who": torch.tensor(1)}, first)
        torch.save({"who": torch.tensor(2), "big": torch.zeros(1000)}, second)
    assert int(torch.load(target, weights_only=True)["who"]) == 1  # whole: the last to finish (the outer) wins
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_while_unpacking_keeps_thearchive(tmp_path, monkeypatch, capsys):
    data = archive([("facades/train/1.jpg", os.urandom(3000)), ("facades/val/2.jpg", os.urandom(300))])
    server, url = serve_files({"facades.tar.gz": data})
    try:
        def disk_full(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(tarfile.TarFile, "extractall", disk_full)
        assert main(["download", "facades", "--root", str(tmp_path), "--base-url", url]) == 2
        line = error_line(capsys)
        assert "No space left" in line and "kept" in line and "corrupt" not in line
        assert (tmp_path / "facades.tar.gz").read_bytes() == data
        monkeypatch.undo()
        assert main(["download", "facades", "--root", str(tmp_path), "--base-url", url]) == 0  # no new download
        assert (tmp_path / "facades" / "train" / "1.jpg").is_file()
    finally:
        server.shutdown()


def test_resume_on_another_dataset_is_refused(tiny_pairs, tmp_path, capsys):
    from conftest import write_tiny_pairs

    other = write_tiny_pairs(tmp_path / "other", seed=5, n_train=6)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS]) == 0
    before = (run / train.CHECKPOINT).read_bytes()
    assert main(["train", "--data", str(other), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 2
    assert "other data" in error_line(capsys)
    assert (run / train.CHECKPOINT).read_bytes() == before
    moved = tmp_path / "moved"
    tiny_pairs.rename(moved)  # the same files elsewhere are the same data
    assert main(["train", "--data", str(moved), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0


def test_export_of_a_checkpoint_keeps_the_data_licence(tiny_pairs, tmp_path):
    (tiny_pairs / "ATTRIBUTION.txt").write_text("Pictures by Someone, CC BY-SA 4.0")
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False)
    for source in ("checkpoint.pt", "best_generator.pt"):
        out = tmp_path / f"from-{source}"
        assert main(["export", str(tmp_path / "run" / source), "-o", str(out)]) == 0
        _, card = weights_module.load_generator(out)
        assert card.licence == {"attribution": "Pictures by Someone, CC BY-SA 4.0"}, source


def test_experiments_never_delete_a_user_folder_named_like_a_variant(tiny_pairs, tmp_path, monkeypatch, capsys):
    from pix2pix_lib.experiments import VARIANTS, base_config, run_experiments

    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(tmp_path / "none.pth"))
    monkeypatch.setenv("PIX2PIX_LPIPS_WEIGHTS", str(tmp_path / "none.pth"))
    out = tmp_path / "D"
    (out / "l1-only").mkdir(parents=True)
    (out / "l1-only" / "thesis.tex").write_text("two years of work")
    base = base_config(image_size=32, ngf=8, ndf=8, batch_size=4, precision="fp32", device="cpu")
    only = [v for v in VARIANTS if v.name == "L1 only"]
    with pytest.raises(RefusedError, match="left as it is"):
        run_experiments(tiny_pairs, out, base=base, budget_images=8, progress=False, variants=only)
    assert (out / "l1-only" / "thesis.tex").read_text() == "two years of work"
    (out / "l1-only" / "run_key.txt").write_text("a file of that name does not make the folder ours")
    with pytest.raises(RefusedError, match="left as it is"):
        run_experiments(tiny_pairs, out, base=base, budget_images=8, progress=False, variants=only)
    assert (out / "l1-only" / "thesis.tex").read_text() == "two years of work"
    assert sorted(p.name for p in out.iterdir()) == ["l1-only"]  # not even the sketch strips were written
    # The study's own folder: a run another process is training is left alone.
    study = tmp_path / "study"
    run_experiments(tiny_pairs, study, base=base, budget_images=8, progress=False, variants=only)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(study / "l1-only" / ".lock")],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusyError):
            run_experiments(tiny_pairs, study, base=base, budget_images=8, progress=False, variants=only,
                            recompute=True)
        assert (study / "l1-only" / "checkpoint.pt").is_file()
    finally:
        holder.kill()
        holder.wait()



def test_a_dataset_builder_never_replaces_a_training_run_or_a_look_alike_folder(tiny_pairs, tmp_path, capsys):
    images, masks = _photos(tmp_path / "carvana")
    run = tmp_path / "runs" / "shoes"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    before = sorted(p.name for p in run.iterdir())
    args = ["prepare", "--images", str(images), "--masks", str(masks), "--val-cars", "1", "--size", "16", "--out"]
    assert main([*args, str(run)]) == 2
    assert "training run" in error_line(capsys) and sorted(p.name for p in run.iterdir()) == before
    mine = tmp_path / "mywork"  # a manifest that looks like ours, and the user's own files beside it
    mine.mkdir()
    (mine / "manifest.json").write_text('{"name": "openmoji-line2color"}')
    (mine / "thesis.tex").write_text("mine")
    assert main([*args, str(mine)]) == 2
    assert (mine / "thesis.tex").read_text() == "mine"


def test_commands_refuse_targets_they_did_not_write(tiny_pairs, tmp_path, capsys, weights):
    from pix2pix_lib import pretrained

    report = tmp_path / "report.json"
    report.write_text('{"my": "numbers"}')
    assert main(["evaluate", "--weights", str(weights), "--data", str(tiny_pairs), "--json", str(report),
                 "--no-perceptual"]) == 2
    assert report.read_text() == '{"my": "numbers"}' and "not an evaluation report" in error_line(capsys)
    run = tmp_path / "run"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    state = (run / "checkpoint.pt").read_bytes()
    assert main(["export", str(weights), "-o", str(run / "checkpoint.pt")]) == 2  # a run's resume state
    assert (run / "checkpoint.pt").read_bytes() == state
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "edges2shoes.pt").write_bytes(b"my own model")
    with pytest.raises(RefusedError, match="not the converted edges2shoes"):
        pretrained.download_model("edges2shoes", tmp_path / "w", base_url="http://127.0.0.1:9/none")
    assert (tmp_path / "w" / "edges2shoes.pt").read_bytes() == b"my own model"


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("{}")
        with atomic_output_dir(tmp_path / "set") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "set").stat().st_mode & 0o777 == 0o755


def test_bold_strokes_are_ink_not_background():
    for width in (26, 30, 34, 40):
        im = Image.new("L", (256, 256), 255)
        ImageDraw.Draw(im).ellipse([40, 40, 216, 216], outline=0, width=width)
        ink, polarity = pre.ink_from_gray(np.asarray(im, np.float32) / 255)
        assert polarity == "dark ink on light" and abs((ink > 0.5).mean() - (np.asarray(im) < 128).mean()) < 0.01


def test_output_names_never_collide():
    from pix2pix_lib.generate import output_names

    files = [Path(n) for n in ("a.png", "a.jpg", "a_png.png", "A_PNG.webp", "b.png")]
    names = list(output_names(files).values())
    assert len({n.lower() for n in names}) == len(files), names


def test_a_planted_lock_link_and_the_current_folder_are_refused(tmp_path, monkeypatch):
    from pix2pix_lib.files import exclusive_lock

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    with pytest.raises(RefusedError, match="lock file"):
        with exclusive_lock(tmp_path / "run" / ".lock"):
            pass
    assert victim.read_text() == "keep"
    monkeypatch.chdir(tmp_path / "run")
    for out in (".", ".."):
        with pytest.raises(RefusedError, match="current folder"):
            with atomic_output_dir(out):
                pass
    assert victim.read_text() == "keep"
