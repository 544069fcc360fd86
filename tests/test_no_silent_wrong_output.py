"""Inputs that would give a plausible but wrong result are caught: ink polarity, EXIF orientation,
NaN weights, corrupt pairs, a full disk, weights that do not fit, a folder of other files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_lib import preprocess as pre
from pix2pix_lib import weights as weights_module
from pix2pix_lib import train
from pix2pix_lib.cli import main, one_line
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.files import atomic_output_dir
from pix2pix_lib.models import build_generator
from hostile_inputs import TINY, TINY_ARGS, error_line, weights  # noqa: F401 (weights: a fixture)


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


def test_a_frame_or_a_dark_table_does_not_flip_the_ink_polarity():
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


def test_exif_orientation_is_applied_on_every_load(tmp_path):
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


def test_weights_full_of_nan_are_refused_on_load(tmp_path):
    g = build_generator(image_size=32, ngf=4)
    with torch.no_grad():
        next(g.parameters()).fill_(math.nan)
    path = weights_module.save_generator(tmp_path / "nan.pt", g, TrainConfig(image_size=32, ngf=4).to_dict())
    with pytest.raises(ValueError, match="NaN or infinite"):
        weights_module.load_generator(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_corrupt_file_is_found_before_the_first_step(tiny_pairs, tmp_path, capsys):
    bad = sorted((tiny_pairs / "train").iterdir())[4]
    _truncate(bad)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS]) == 2
    line = error_line(capsys)
    assert bad.name in line and "--skip-bad" in line and "truncated" in line
    assert not (run / train.CHECKPOINT).exists()
    assert main(["train", "--data", str(tiny_pairs), "--out", str(run), *TINY_ARGS, "--skip-bad"]) == 0
    assert train.read_checkpoint(run / train.CHECKPOINT)["data"]["files"] == 9  # 8 + 2, one left out


def test_a_full_disk_while_saving_says_so_and_keeps_the_previous_checkpoint(tiny_pairs, tmp_path, monkeypatch):
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


def test_resume_into_a_folder_without_a_checkpoint_is_refused(tiny_pairs, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "typo"), "--resume", "--quiet"]) == 2
    assert "no checkpoint.pt to resume" in error_line(capsys)
    assert not (tmp_path / "typo").exists()


def test_a_fresh_run_never_writes_into_a_folder_of_other_files(tiny_pairs, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "log.csv").write_text("my spreadsheet")
    assert main(["train", "--data", str(tiny_pairs), "--out", str(home), *TINY_ARGS]) == 2
    assert "not a run folder" in error_line(capsys)
    assert (home / "log.csv").read_text() == "my spreadsheet" and sorted(p.name for p in home.iterdir()) == ["log.csv"]


def test_weights_that_do_not_fit_list_the_keys(tmp_path):
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


def test_a_bad_file_inside_a_loader_worker_is_one_line(tiny_pairs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_GB", "0")  # no cache pre-fill in the main process: workers decode
    bad = sorted((tiny_pairs / "train").iterdir())[2]
    data = bytearray(bad.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 8: idat + 40] = bytes(32)  # damaged pixels; header, size and IEND intact
    bad.write_bytes(bytes(data))
    code = main(["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), *TINY_ARGS,
                 "--num-workers", "1"])
    assert code == 2
    line = error_line(capsys)
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
