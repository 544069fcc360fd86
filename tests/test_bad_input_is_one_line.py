"""Bad input is a one-line error naming the cause, never a traceback: image bombs, bad sizes and
options, damaged checkpoints, broken entries in a folder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
import torch
import traitlets
from PIL import Image, ImageDraw

from pix2pix_lib import preprocess as pre
from pix2pix_lib import train
from pix2pix_lib.cli import main
from pix2pix_lib.config import TrainConfig
from hostile_inputs import TINY, TINY_ARGS, doodle, error_line, weights  # noqa: F401 (weights: a fixture)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG of `width` x `height` 1-bit pixels whose data is a few hundred bytes (a bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + bytes((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_decompression_bombs_are_one_line_errors_and_long_thin_images_stay_small(tmp_path, weights, capsys):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 200_000
    assert main(["generate", "--weights", str(weights), str(bomb), "-o", str(tmp_path / "o.png")]) == 2
    assert "bomb.png" in error_line(capsys)
    from pix2pix_lib.data.paired import pair_file_problem
    assert "too many pixels" in pair_file_problem(bomb)

    thin = Image.new("L", (30000, 10), 255)
    ImageDraw.Draw(thin).line([(100, 5), (29900, 5)], fill=0, width=3)
    thin.save(tmp_path / "thin.png")
    steps = pre.preprocess_steps(tmp_path / "thin.png", image_size=64)
    assert steps["square"].size <= (4 * 64 / pre.DRAWING_FILL + 2) ** 2  # not a 39000 x 39000 square
    assert steps["normalized"].shape == (64, 64)


def test_build_openmoji_validates_the_size_and_clears_a_killed_builds_leftovers(tmp_path, capsys):
    out = tmp_path / "openmoji"
    assert main(["build-openmoji", "--out", str(out), "--size", "30000", "--limit", "2"]) == 2
    assert "between 8 and 1024" in error_line(capsys)
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
def test_every_numeric_train_option_is_validated_in_one_line(tiny_pairs, tmp_path, capsys, option, value, named):
    args = ["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), *TINY_ARGS]
    if option == "--epochs":
        args += ["--epochs-decay", "0"]
    assert main([*args, option, value]) == 2
    assert named in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("width", ["inf", "0", "-2", "nan", "1000"])
def test_stroke_width_is_validated(tmp_path, weights, capsys, width):
    doodle().save(tmp_path / "d.png")
    assert main(["generate", "--weights", str(weights), str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png"),
                 "--stroke-width", width]) == 2
    assert "stroke width" in error_line(capsys)
    assert not (tmp_path / "o.png").exists()


def test_folder_mode_reports_and_skips_broken_entries(tmp_path, weights, capsys):
    folder = tmp_path / "sketches"
    folder.mkdir()
    (folder / "broken.png").symlink_to(tmp_path / "gone.png")
    (folder / "adir.png").mkdir()
    doodle().save(folder / "zz_last.png")
    assert main(["generate", "--weights", str(weights), str(folder), "-o", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "broken link" in out and "a folder, not an image" in out
    assert "coloured 1 of 3" in out and "2 failed" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["zz_last.png"]


@pytest.mark.parametrize("damage, named", [("drop:opt_g", "'opt_g'"), ("type:epoch", "'epoch'"),
                                           ("drop:rng.torch", "'rng.torch'"), ("type:config", "'config'")])
def test_a_damaged_checkpoint_names_the_field(tiny_pairs, tmp_path, capsys, damage, named):
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
    assert named in error_line(capsys)


def test_the_canvas_size_is_validated_after_construction():
    from pix2pix_lib.canvas import DoodleCanvas

    with pytest.raises(traitlets.TraitError, match="size must be between"):
        DoodleCanvas(size=100_000)
    canvas = DoodleCanvas()
    with pytest.raises(traitlets.TraitError, match="size is fixed"):  # the views were built at their size
        canvas.size = 100_000
    with pytest.raises(traitlets.TraitError):
        canvas.set_state({"size": 5})  # what a front end's update calls
    assert canvas.size == 256
