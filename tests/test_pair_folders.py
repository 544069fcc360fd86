"""Pairing two folders (A and B) by name into the A|B format: data/pair_folders.py and the `pair` verb."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from pix2pix_lib.cli.data_verbs import add_pair
from pix2pix_lib.data import load_rgb
from pix2pix_lib.data.pair_folders import fit_square, match_folders, pair_folders


def _folders(tmp_path, n=5, size=(40, 30)):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    for i in range(n):
        Image.new("RGB", size, (0, 0, 0)).save(a / f"img{i}.png")               # A: black
        Image.new("RGB", size, (10 * i, 200, 30)).save(b / f"img{i}.jpg", quality=95)  # B: green, other suffix
    return a, b


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_pairs_by_name_pads_to_square_and_leaves_inputs_alone(tmp_path):
    a, b = _folders(tmp_path)
    Image.new("RGB", (40, 30)).save(a / "lonely.png")
    Image.new("RGB", (40, 30)).save(b / "stray.png")
    before = _snapshot(a), _snapshot(b)
    out = pair_folders(a, b, tmp_path / "out", size=32, val_fraction=0.2, progress=False)
    assert (_snapshot(a), _snapshot(b)) == before
    files = sorted((out / "train").glob("*.png")) + sorted((out / "val").glob("*.png"))
    assert sorted(p.stem for p in files) == [f"img{i}" for i in range(5)] and len(list((out / "val").iterdir())) == 1
    pair = load_rgb(files[0])
    assert pair.shape == (32, 64, 3)
    a_half, b_half = pair[:, :32], pair[:, 32:]
    # 40x30 padded to 40x40 with white above and below, then 32 px: white bands, the picture between.
    assert (a_half[0] > 245).all() and (a_half[16] < 10).all() and (b_half[0] > 245).all()
    assert b_half[16, 16, 1] > 180 and b_half[16, 16, 0] < 60  # B's green survives
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["only_in_a"] == ["lonely"] and manifest["only_in_b"] == ["stray"]
    assert manifest["counts"]["padded"] == 5 and manifest["fit"] == "pad"


def test_crop_keeps_the_centre():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 10:30] = 200
    assert fit_square(image, "crop").shape == (20, 20, 3) and (fit_square(image, "crop") == 200).all()
    assert fit_square(image, "pad").shape == (40, 40, 3) and (fit_square(image, "pad")[0] == 255).all()
    square = np.zeros((8, 8, 3), np.uint8)
    assert fit_square(square, "crop") is square


def test_sizes_that_differ_are_refused_by_name_or_skipped(tmp_path):
    a, b = _folders(tmp_path, n=3)
    Image.new("RGB", (64, 64)).save(b / "img1.jpg")
    with pytest.raises(ValueError, match=r"img1\.png is 40x30 but .*img1\.jpg is 64x64"):
        pair_folders(a, b, tmp_path / "out", size=16, progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.warns(UserWarning, match="img1"):
        out = pair_folders(a, b, tmp_path / "out", size=16, val_fraction=0, skip_bad=True, progress=False)
    assert json.loads((out / "manifest.json").read_text())["counts"]["skipped"] == 1
    assert sorted(p.stem for p in (out / "train").iterdir()) == ["img0", "img2"]


def test_no_shared_name_and_ambiguous_names(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    Image.new("RGB", (8, 8)).save(a / "x.png")
    Image.new("RGB", (8, 8)).save(b / "y.png")
    with pytest.raises(FileNotFoundError, match="share no file name"):
        pair_folders(a, b, tmp_path / "out", progress=False)
    Image.new("RGB", (8, 8)).save(a / "x.jpg")
    with pytest.raises(ValueError, match="two images named 'x'"):
        match_folders(a, b)


def test_output_inside_an_input_is_refused(tmp_path):
    a, b = _folders(tmp_path, n=2)
    with pytest.raises(ValueError, match="inside the input folder"):
        pair_folders(a, b, a / "pairs", size=16, progress=False)
    assert sorted(p.name for p in a.iterdir()) == ["img0.png", "img1.png"]


def test_pair_verb_says_what_it_did(tmp_path, capsys):
    a, b = _folders(tmp_path, n=4)
    Image.new("RGB", (40, 30)).save(a / "extra.png")
    parser = argparse.ArgumentParser()
    add_pair(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["pair", "--a", str(a), "--b", str(b), "--out", str(tmp_path / "p"),
                              "--size", "16", "--fit", "crop", "--val-fraction", "0.25"])
    assert args.func(args) == 0
    said = capsys.readouterr().out
    assert "3 train + 1 val pairs at 16 px (4 not square, cropped to the centre; 0 skipped)" in said
    assert "1 only in" in said and "extra" in said
