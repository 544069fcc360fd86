"""A command never destroys what it did not make (issue #11): one test per finding, hostile inputs
made here. Each item number is the issue's."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image, ImageDraw

from conftest import serve_files, write_car_photos
from pix2pix_lib import preprocess as pre
from pix2pix_lib import weights as weights_module
from pix2pix_lib import train
from pix2pix_lib.cli import main, one_line
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.data import download as download_module
from pix2pix_lib.data import fetch as fetch_module
from pix2pix_lib.files import FolderBusyError, RefusedError, atomic_output_dir, atomic_path
from pix2pix_lib.models import build_generator

TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2)
TINY_ARGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--patch-size", "16", "--batch-size", "2",
             "--precision", "fp32", "--epochs", "1", "--epochs-decay", "0", "--quiet"]


def _doodle(size=120) -> Image.Image:
    im = Image.new("L", (size, size), 255)
    ImageDraw.Draw(im).ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], outline=0, width=4)
    return im


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return weights_module.save_generator(tmp_path / "g.pt", build_generator(image_size=32, ngf=4),
                              TrainConfig(image_size=32, ngf=4).to_dict())


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(capsys) -> str:
    """The one 'error:' line a refused command prints (progress bars may share stderr)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- data loss -----------------------------------------------------------------------------------
def _photos(root: Path) -> tuple[Path, Path]:
    images, masks = write_car_photos(root / "train", root / "train_masks")
    (root / "notes.txt").write_text("my notes")
    return images, masks


@pytest.mark.parametrize("target", ["images", "parent"])
def test_01_prepare_never_replaces_its_inputs_or_their_folder(tmp_path, capsys, target):
    images, masks = _photos(tmp_path / "carvana")
    before = _snapshot(tmp_path / "carvana")
    out = images if target == "images" else images.parent
    assert main(["prepare", "--images", str(images), "--masks", str(masks), "--out", str(out), "--val-cars", "1",
                 "--size", "16"]) == 2
    assert "input" in _error_line(capsys)
    assert _snapshot(tmp_path / "carvana") == before
    # A new folder works, and running it again replaces only its own earlier result.
    for _ in range(2):
        assert main(["prepare", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "pairs"),
                     "--val-cars", "1", "--size", "16"]) == 0
    assert _snapshot(tmp_path / "carvana") == before


def test_02_build_openmoji_refuses_a_folder_of_user_files_or_a_file(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "edges2shoes" / "train").mkdir(parents=True)
    (data / "edges2shoes" / "train" / "1_AB.jpg").write_bytes(b"user data")
    (data / "README.md").write_text("mine")
    before = _snapshot(data)
    assert main(["build-openmoji", "--out", str(data), "--size", "16", "--limit", "2"]) == 2
    assert "did not make" in _error_line(capsys)
    assert main(["build-openmoji", "--out", str(data), "--size", "16", "--limit", "2", "--force"]) == 2
    assert _snapshot(data) == before
    (tmp_path / "a-file").write_text("keep me")
    assert main(["build-openmoji", "--out", str(tmp_path / "a-file"), "--size", "16", "--limit", "2"]) == 2
    assert (tmp_path / "a-file").read_text() == "keep me"
    from pix2pix_lib.data import ensure_openmoji_dataset
    with pytest.raises(RefusedError, match="did not make"):
        ensure_openmoji_dataset(data, size=16, limit=2, progress=False)
    assert _snapshot(data) == before
    # Its own earlier build is replaced as before.
    built = ensure_openmoji_dataset(data / "openmoji", size=16, limit=2, progress=False)
    assert main(["build-openmoji", "--out", str(built), "--size", "16", "--limit", "3", "--force"]) == 0
    assert (data / "README.md").read_text() == "mine"


def test_03_generate_never_overwrites_its_input_and_names_outputs_uniquely(tmp_path, weights, capsys):
    sketch = tmp_path / "drawing.png"
    _doodle().save(sketch)
    original = sketch.read_bytes()
    assert main(["generate", "--weights", str(weights), str(sketch), "-o", str(sketch)]) == 2
    assert "input itself" in _error_line(capsys) and sketch.read_bytes() == original

    folder = tmp_path / "sketches"
    folder.mkdir()
    for suffix in (".jpg", ".png", ".webp"):
        _doodle().convert("RGB").save(folder / f"a{suffix}")
    before = _snapshot(folder)
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(folder)]) == 2
    assert _snapshot(folder) == before

    out = tmp_path / "out"
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_jpg.png", "a_png.png", "a_webp.png"]
    assert "coloured 3 of 3" in capsys.readouterr().out
    # Its own results may be replaced; someone else's file only with --force.
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(out)]) == 0
    mine = tmp_path / "mine.png"
    Image.new("RGB", (8, 8), "red").save(mine)
    assert main(["generate", "--weights", str(weights), str(sketch), "-o", str(mine)]) == 2
    assert "--force" in _error_line(capsys) and Image.open(mine).size == (8, 8)
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


def test_04_a_second_training_into_a_folder_being_written_is_refused(tiny_pairs, tmp_path):
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


def test_04_two_writers_of_one_file_get_their_own_temporary_files(tmp_path):
    target = tmp_path / "checkpoint.pt"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        torch.save({"who": torch.tensor(1)}, first)
        torch.save({"who": torch.tensor(2), "big": torch.zeros(1000)}, second)
    assert int(torch.load(target, weights_only=True)["who"]) == 1  # whole: the last to finish (the outer) wins
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def _archive(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_05_a_full_disk_while_unpacking_keeps_the_archive(tmp_path, monkeypatch, capsys):
    data = _archive([("facades/train/1.jpg", os.urandom(3000)), ("facades/val/2.jpg", os.urandom(300))])
    server, url = serve_files({"facades.tar.gz": data})
    try:
        def disk_full(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(tarfile.TarFile, "extractall", disk_full)
        assert main(["download", "facades", "--root", str(tmp_path), "--base-url", url]) == 2
        line = _error_line(capsys)
        assert "No space left" in line and "kept" in line and "corrupt" not in line
        assert (tmp_path / "facades.tar.gz").read_bytes() == data
        monkeypatch.undo()
        assert main(["download", "facades", "--root", str(tmp_path), "--base-url", url]) == 0  # no new download
        assert (tmp_path / "facades" / "train" / "1.jpg").is_file()
    finally:
        server.shutdown()


def test_06_resume_on_another_dataset_is_refused(tiny_pairs, tmp_path, capsys):
    from conftest import write_tiny_pairs

    other = write_tiny_pairs(tmp_path / "other", seed=5, n_train=6)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS]) == 0
    before = (run / train.CHECKPOINT).read_bytes()
    assert main(["train", "--data", str(other), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 2
    assert "other data" in _error_line(capsys)
    assert (run / train.CHECKPOINT).read_bytes() == before
    moved = tmp_path / "moved"
    tiny_pairs.rename(moved)  # the same files elsewhere are the same data
    assert main(["train", "--data", str(moved), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0


def test_07_export_of_a_checkpoint_keeps_the_data_licence(tiny_pairs, tmp_path):
    (tiny_pairs / "ATTRIBUTION.txt").write_text("Pictures by Someone, CC BY-SA 4.0")
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False)
    for source in ("checkpoint.pt", "best_generator.pt"):
        out = tmp_path / f"from-{source}"
        assert main(["export", str(tmp_path / "run" / source), "-o", str(out)]) == 0
        _, card = weights_module.load_generator(out)
        assert card.licence == {"attribution": "Pictures by Someone, CC BY-SA 4.0"}, source


def test_08_experiments_never_delete_a_user_folder_named_like_a_variant(tiny_pairs, tmp_path, monkeypatch, capsys):
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


# --- security ------------------------------------------------------------------------------------
class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_09_a_pickled_weights_file_is_refused_without_suggesting_the_unsafe_retry(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "pix2pix-generator/1", "x": Payload()}, evil)
    _doodle().save(tmp_path / "d.png")
    assert main(["generate", "--weights", str(evil), str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png")]) == 2
    line = _error_line(capsys)
    assert "could run code" in line and "refused" in line
    assert "weights_only" not in line and "Re-running" not in line
    (tmp_path / "random.pt").write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="not a readable generator weights file"):
        weights_module.load_generator(tmp_path / "random.pt")


def test_10_archive_bombs_and_oversized_downloads_are_refused(tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(_archive([("facades/train/zeros.jpg", bytes(60 * 2**20))]))
    assert bomb.stat().st_size < 200_000  # ~60 kB that unpack to 60 MB
    with pytest.raises(download_module.CorruptArchiveError, match="unpacks to more than"):
        download_module.safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "facades").exists()
    many = tmp_path / "many.tar.gz"
    many.write_bytes(_archive([(f"x/{i}.jpg", b"1") for i in range(30)]))
    with pytest.raises(download_module.CorruptArchiveError, match="more than 20 members"):
        download_module.safe_extract(many, tmp_path / "out2", max_members=20)

    server, url = serve_files({"big.tar.gz": os.urandom(300_000)})
    try:
        with pytest.raises(RuntimeError, match="announces"):
            fetch_module._download(f"{url}/big.tar.gz", tmp_path / "big.tar.gz", progress=False,
                                      max_bytes=100_000)
    finally:
        server.shutdown()
    server, url = serve_files({}, endless=True)
    try:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="goes on past"):
            fetch_module._download(f"{url}/endless.tar.gz", tmp_path / "endless.tar.gz", progress=False,
                                      max_bytes=1_000_000)
        assert time.monotonic() - start < 8
        assert list(tmp_path.glob("endless*")) == []
    finally:
        server.shutdown()
    assert download_module.max_download_bytes("facades") < 100 * 2**20


# --- crashes -------------------------------------------------------------------------------------
def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG of `width` x `height` 1-bit pixels whose data is a few hundred bytes (a bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + bytes((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_11_decompression_bombs_are_one_line_errors_and_long_thin_images_stay_small(tmp_path, weights, capsys):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 200_000
    assert main(["generate", "--weights", str(weights), str(bomb), "-o", str(tmp_path / "o.png")]) == 2
    assert "bomb.png" in _error_line(capsys)
    from pix2pix_lib.data.paired import pair_file_problem
    assert "too many pixels" in pair_file_problem(bomb)

    thin = Image.new("L", (30000, 10), 255)
    ImageDraw.Draw(thin).line([(100, 5), (29900, 5)], fill=0, width=3)
    thin.save(tmp_path / "thin.png")
    steps = pre.preprocess_steps(tmp_path / "thin.png", image_size=64)
    assert steps["square"].size <= (4 * 64 / pre.DRAWING_FILL + 2) ** 2  # not a 39000 x 39000 square
    assert steps["normalized"].shape == (64, 64)


def test_12_build_openmoji_validates_the_size_and_clears_a_killed_builds_leftovers(tmp_path, capsys):
    out = tmp_path / "openmoji"
    assert main(["build-openmoji", "--out", str(out), "--size", "30000", "--limit", "2"]) == 2
    assert "between 8 and 1024" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".openmoji.k1ll3d_0.partial"  # what a build killed by the renderer left behind
    (stale / "all").mkdir(parents=True)
    (stale / ".pix2pix-partial").touch()
    (tmp_path / ".openmoji.my.partial").write_text("a user's file with a look-alike name")
    sibling = tmp_path / ".openmoji.v2.abcd1234.partial"  # another folder's build (openmoji.v2) in progress
    sibling.mkdir()
    (sibling / ".pix2pix-partial").touch()
    assert main(["build-openmoji", "--out", str(out), "--size", "16", "--limit", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".openmoji.my.partial", sibling.name, "openmoji"]


@pytest.mark.parametrize("option, value, named", [
    ("--epochs-decay", "-1", "epochs_decay"), ("--max-steps-per-epoch", "-1", "max_steps_per_epoch"),
    ("--epochs", "0", "epochs"), ("--lr-g", "inf", "lr_g"), ("--lambda-l1", "nan", "lambda_l1"),
    ("--batch-size", "0", "batch_size"), ("--beta1", "1.5", "beta1"), ("--load-size", "8", "load_size"),
])
def test_13_every_numeric_train_option_is_validated_in_one_line(tiny_pairs, tmp_path, capsys, option, value, named):
    args = ["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), *TINY_ARGS]
    if option == "--epochs":
        args += ["--epochs-decay", "0"]
    assert main([*args, option, value]) == 2
    assert named in _error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("width", ["inf", "0", "-2", "nan", "1000"])
def test_13_stroke_width_is_validated(tmp_path, weights, capsys, width):
    _doodle().save(tmp_path / "d.png")
    assert main(["generate", "--weights", str(weights), str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png"),
                 "--stroke-width", width]) == 2
    assert "stroke width" in _error_line(capsys)
    assert not (tmp_path / "o.png").exists()


def test_14_folder_mode_reports_and_skips_broken_entries(tmp_path, weights, capsys):
    folder = tmp_path / "sketches"
    folder.mkdir()
    (folder / "broken.png").symlink_to(tmp_path / "gone.png")
    (folder / "adir.png").mkdir()
    _doodle().save(folder / "zz_last.png")
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "broken link" in out and "a folder, not an image" in out
    assert "coloured 1 of 3" in out and "2 failed" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["zz_last.png"]


@pytest.mark.parametrize("damage, named", [("drop:opt_g", "'opt_g'"), ("type:epoch", "'epoch'"),
                                           ("drop:rng.torch", "'rng.torch'"), ("type:config", "'config'")])
def test_15_a_damaged_checkpoint_names_the_field(tiny_pairs, tmp_path, capsys, damage, named):
    run = tmp_path / "run"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    state = torch.load(run / train.CHECKPOINT, weights_only=True)
    kind, field = damage.split(":")
    where = state["rng"] if field.startswith("rng.") else state
    key = field.removeprefix("rng.")
    if kind == "drop":
        del where[key]
    else:
        where[key] = "three"
    torch.save(state, run / train.CHECKPOINT)
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 2
    assert named in _error_line(capsys)


def test_16_the_canvas_size_is_validated_after_construction():
    from pix2pix_lib.canvas import DoodleCanvas

    with pytest.raises(traitlets.TraitError, match="size must be between"):
        DoodleCanvas(size=100_000)
    canvas = DoodleCanvas()
    with pytest.raises(traitlets.TraitError, match="size is fixed"):  # the views were built at their size
        canvas.size = 100_000
    with pytest.raises(traitlets.TraitError):
        canvas.set_state({"size": 5})  # what a front end's update calls
    assert canvas.size == 256


# --- silently wrong output -----------------------------------------------------------------------
def _circle_cross(size=400, frame=False) -> Image.Image:
    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    d.ellipse([120, 120, 280, 280], outline=0, width=5)
    d.line([(160, 200), (240, 200)], fill=0, width=5)
    d.line([(200, 160), (200, 240)], fill=0, width=5)
    if frame:
        d.rectangle([0, 0, size - 1, size - 1], outline=0, width=6)
    return im


def _photographed_on_a_table(size=400) -> Image.Image:
    """The drawing on paper lit from the right (0.55..0.80) in the middle of a dark table (~0.2)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.18 + 0.05 * yy
    paper = 0.25 + np.asarray(_circle_cross(size), np.float32) / 255 * (0.55 + 0.25 * xx)
    y0, y1, x0, x1 = int(0.1 * size), int(0.9 * size), int(0.12 * size), int(0.88 * size)
    img[y0:y1, x0:x1] = paper[y0:y1, x0:x1]
    return Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))


def test_17_a_frame_or_a_dark_table_does_not_flip_the_ink_polarity():
    clean = pre.preprocess_sketch(_circle_cross(), image_size=64)
    ink_share = float((clean < 0).float().mean())
    framed = pre.preprocess_steps(_circle_cross(frame=True), image_size=64)
    assert framed["polarity"] == "dark ink on light"
    assert (framed["normalized"] < 0.5).mean() < 2.5 * ink_share  # not a blob: the strokes and the frame
    table = pre.preprocess_steps(_photographed_on_a_table(), image_size=64)
    assert table["polarity"] == "dark ink on light"
    assert np.abs(pre.input_from_steps(table) - clean).mean() < 0.1  # the table and the shadow are gone
    white_on_black = pre.preprocess_steps(Image.fromarray(255 - np.asarray(_circle_cross())), image_size=64)
    assert white_on_black["polarity"] == "light ink on dark"


def test_18_exif_orientation_is_applied_on_every_load(tmp_path):
    from pix2pix_lib.data.paired import load_rgb

    im = Image.new("RGB", (60, 30), "white")
    ImageDraw.Draw(im).rectangle([0, 0, 9, 29], fill="black")  # a bar on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = load_rgb(tmp_path / "phone.jpg")
    assert rgb.shape == (60, 30, 3)
    assert rgb[:10].mean() < 60 and rgb[-10:].mean() > 200  # the bar is now at the top
    assert pre.load_gray(tmp_path / "phone.jpg").shape == (60, 30)
    with Image.open(tmp_path / "phone.jpg") as opened:
        assert pre.load_gray(opened).shape == (60, 30)


def test_19_weights_full_of_nan_are_refused_on_load(tmp_path):
    g = build_generator(image_size=32, ngf=4)
    with torch.no_grad():
        next(g.parameters()).fill_(math.nan)
    path = weights_module.save_generator(tmp_path / "nan.pt", g, TrainConfig(image_size=32, ngf=4).to_dict())
    with pytest.raises(ValueError, match="NaN or infinite"):
        weights_module.load_generator(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_20_a_corrupt_file_is_found_before_the_first_step(tiny_pairs, tmp_path, capsys):
    bad = sorted((tiny_pairs / "train").iterdir())[4]
    _truncate(bad)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS]) == 2
    line = _error_line(capsys)
    assert bad.name in line and "--skip-bad" in line and "truncated" in line
    assert not (run / train.CHECKPOINT).exists()
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS, "--skip-bad"]) == 0
    assert train.read_checkpoint(run / train.CHECKPOINT)["data"]["files"] == 9  # 8 + 2, one left out


def test_21_a_full_disk_while_saving_says_so_and_keeps_the_previous_checkpoint(tiny_pairs, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    before = (run / train.CHECKPOINT).read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if Path(f).name.startswith(".checkpoint.pt."):  # the generators fit; the checkpoint does not
            Path(f).write_bytes(Path(f).read_bytes()[:1000])  # what got onto the disk
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1000 vs 2456")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"disk full while writing .*checkpoint\.pt; the previous checkpoint \(checkpoint\.pt, epoch 1\) is intact"):
        train.fit(TrainConfig(**TINY, epochs=2, epochs_decay=0), tiny_pairs, run, resume=True, progress=False)
    monkeypatch.undo()
    assert (run / train.CHECKPOINT).read_bytes() == before
    assert train.load_checkpoint(run / train.CHECKPOINT).epoch == 1
    assert sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == []


def test_22_resume_into_a_folder_without_a_checkpoint_is_refused(tiny_pairs, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "typo"), "--resume", "--quiet"]) == 2
    assert "no checkpoint.pt to resume" in _error_line(capsys)
    assert not (tmp_path / "typo").exists()


def test_22_a_fresh_run_never_writes_into_a_folder_of_other_files(tiny_pairs, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "log.csv").write_text("my spreadsheet")
    assert main(["train", "--data", str(tiny_pairs), "--out", str(home), *TINY_ARGS]) == 2
    assert "not a run folder" in _error_line(capsys)
    assert (home / "log.csv").read_text() == "my spreadsheet" and sorted(p.name for p in home.iterdir()) == ["log.csv"]


def test_23_weights_that_do_not_fit_list_the_keys(tmp_path):
    g = build_generator(image_size=32, ngf=4)
    state = g.state_dict()
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(1)
    payload = {"format": weights_module.WEIGHTS_FORMAT_V1, "config": {"image_size": 32, "ngf": 8, "norm": "batch", "skips": True,
                                                        "dropout": True}, "state_dict": state, "extra": {}}
    torch.save(payload, tmp_path / "g.pt")
    with pytest.raises(ValueError) as err:
        weights_module.load_generator(tmp_path / "g.pt")
    text = str(err.value)
    assert "1 missing" in text and "1 unexpected (extra.weight)" in text and "of another shape" in text
    assert " and " in text and "more" in text  # a few shown, then a count


def test_24_a_bad_file_inside_a_loader_worker_is_one_line(tiny_pairs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_GB", "0")  # no cache pre-fill in the main process: workers decode
    bad = sorted((tiny_pairs / "train").iterdir())[2]
    data = bytearray(bad.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 8: idat + 40] = bytes(32)  # damaged pixels; header, size and IEND intact
    bad.write_bytes(bytes(data))
    code = main(["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), *TINY_ARGS,
                 "--num-workers", "1"])
    assert code == 2
    line = _error_line(capsys)
    assert line.startswith("error: ") and bad.name in line and "Original Traceback" not in line


def test_one_line_unwraps_a_worker_traceback():
    wrapped = ValueError("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                         "call last):\n  File \"x.py\", line 1, in f\nValueError: a.png: cannot read image (bad)\n")
    assert one_line(wrapped) == "a.png: cannot read image (bad)"


def test_atomic_output_dir_leaves_nothing_behind_on_failure(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(tmp_path / "set") as tmp:
            (tmp / "half.png").write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output_dir(tmp_path / "set") as tmp:
        (tmp / "a").write_text("1")
    assert json.loads((tmp_path / "set" / ".made-by-pix2pix_lib").read_text())["made_by"] == "pix2pix_lib"


# --- found by review: more ways to lose files ----------------------------------------------------
def test_a_dataset_builder_never_replaces_a_training_run_or_a_look_alike_folder(tiny_pairs, tmp_path, capsys):
    images, masks = _photos(tmp_path / "carvana")
    run = tmp_path / "runs" / "shoes"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    before = sorted(p.name for p in run.iterdir())
    args = ["prepare", "--images", str(images), "--masks", str(masks), "--val-cars", "1", "--size", "16", "--out"]
    assert main([*args, str(run)]) == 2
    assert "training run" in _error_line(capsys) and sorted(p.name for p in run.iterdir()) == before
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
    assert report.read_text() == '{"my": "numbers"}' and "not an evaluation report" in _error_line(capsys)
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
