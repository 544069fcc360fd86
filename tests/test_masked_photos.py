"""Carvana-style preparation and the two edge styles, on a tiny generated Carvana-shaped folder."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from pix2pix_lib.cli import main
from pix2pix_lib.data import canny_edges, load_rgb, prepare_masked_photos, sketch_edges
from pix2pix_lib.data.masked_photos import load_mask, object_id, pad_to_square


def _car(seed, h=48, w=64):
    """A 'car' (filled ellipse with a window) on a noisy background, and its mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # busy background
    mask = np.zeros((h, w), np.uint8)
    cx, cy = w // 2 + int(rng.integers(-4, 5)), h // 2
    cv2.ellipse(mask, (cx, cy), (w // 3, h // 4), 0, 0, 360, 1, -1)
    colour = tuple(int(c) for c in rng.integers(40, 200, 3))
    image[mask > 0] = colour
    cv2.rectangle(image, (cx - 6, cy - 6), (cx + 6, cy - 1), (20, 20, 20), -1)
    return image, mask


@pytest.fixture
def carvana(tmp_path):
    """7 cars x 2 angles in Carvana's layout: train/<car>_<NN>.jpg, train_masks/<car>_<NN>_mask.gif."""
    images, masks = tmp_path / "train", tmp_path / "train_masks"
    images.mkdir()
    masks.mkdir()
    for car in range(7):
        for angle in (1, 9):
            image, mask = _car(car * 10 + angle)
            stem = f"{car:06d}abcdef_{angle:02d}"  # 12 hex digits, as Carvana's ids
            Image.fromarray(image).save(images / f"{stem}.jpg", quality=95)
            gif = Image.fromarray(mask, mode="L").convert("P")  # 0/1 palette indices like Carvana
            gif.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
            gif.save(masks / f"{stem}_mask.gif")
    return images, masks


def test_carvana_layout_to_pairs(carvana, tmp_path):
    images, masks = carvana
    out = prepare_masked_photos(images, masks, tmp_path / "pairs", size=32, val_cars=2, progress=False)
    train = sorted((out / "train").glob("*.png"))
    val = sorted((out / "val").glob("*.png"))
    assert len(train) + len(val) == 14 and len(val) == 4  # 2 whole cars x 2 angles
    cars = {split: {object_id(p.stem) for p in files} for split, files in (("train", train), ("val", val))}
    assert len(cars["val"]) == 2 and not cars["train"] & cars["val"]
    pair = load_rgb(val[0])
    assert pair.shape == (32, 64, 3)
    a, b = pair[:, :32], pair[:, 32:]
    # Background removed: corners of B are white; the object keeps its colour.
    assert (b[0, 0] > 245).all() and (b[-1, -1] > 245).all() and b[16, 16].mean() < 230
    # A is black strokes on white: mostly white, some dark pixels.
    dark = (a.mean(axis=2) < 128).mean()
    assert 0.01 < dark < 0.5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 10, "val": 4, "skipped": 0, "masks_dropped": 0}
    assert sorted(manifest["val_objects"]) == sorted(cars["val"])


def test_same_seed_same_split_other_seed_other_split(carvana, tmp_path):
    images, masks = carvana
    splits = []
    for seed in (0, 0, 3):
        out = prepare_masked_photos(images, masks, tmp_path / f"p{len(splits)}", size=16, val_cars=2,
                                    seed=seed, progress=False)
        splits.append(sorted(p.name for p in (out / "val").glob("*.png")))
    assert splits[0] == splits[1] and splits[0] != splits[2]


def test_image_without_mask_and_mask_without_image(carvana, tmp_path):
    images, masks = carvana
    (masks / "000000abcdef_01_mask.gif").unlink()
    with pytest.raises(FileNotFoundError, match=r"000000abcdef_01\.jpg: image without a mask"):
        prepare_masked_photos(images, masks, tmp_path / "out", size=16, val_cars=2, progress=False)
    assert not (tmp_path / "out").exists()
    (images / "000000abcdef_01.jpg").unlink()
    Image.new("L", (64, 48)).save(masks / "lonely_mask.png")
    with pytest.raises(FileNotFoundError, match=r"lonely_mask\.png: mask without an image"):
        prepare_masked_photos(images, masks, tmp_path / "out", size=16, val_cars=2, progress=False)
    with pytest.warns(UserWarning, match="mask without an image"):
        out = prepare_masked_photos(images, masks, tmp_path / "out", size=16, val_cars=2,
                                    skip_bad=True, progress=False)
    assert json.loads((out / "manifest.json").read_text())["counts"]["skipped"] == 1


def test_two_photos_with_one_name_are_refused_before_anything_is_written(carvana, tmp_path):
    """car_01.jpg and car_01.png would both become the pair car_01.png: one photo silently lost."""
    images, masks = carvana
    Image.open(images / "000000abcdef_01.jpg").save(images / "000000abcdef_01.png")
    for mask_folder in (masks, None):  # with the masks, and with masks made from the photos
        with pytest.raises(ValueError, match=r"two images named '000000abcdef_01' \(000000abcdef_01\.jpg and "
                                             r"000000abcdef_01\.png\)"):
            prepare_masked_photos(images, mask_folder, tmp_path / "out", size=16, val_cars=2, progress=False)
        assert not (tmp_path / "out").exists()


def test_corrupt_image_leaves_no_output_and_skip_bad_counts(carvana, tmp_path):
    images, masks = carvana
    (images / "000003abcdef_09.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(ValueError, match=r"000003abcdef_09\.jpg"):
        prepare_masked_photos(images, masks, tmp_path / "out", size=16, val_cars=2, progress=False)
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []
    with pytest.warns(UserWarning, match=r"000003abcdef_09\.jpg"):
        out = prepare_masked_photos(images, masks, tmp_path / "out", size=16, val_cars=2,
                                    skip_bad=True, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["skipped"] == 1 and manifest["counts"]["train"] + manifest["counts"]["val"] == 13


def test_too_few_cars_for_validation(carvana, tmp_path):
    with pytest.raises(ValueError, match="7 objects"):
        prepare_masked_photos(*carvana, tmp_path / "o", size=16, val_cars=7, progress=False)


def test_mask_reading_and_padding(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[False, True], [True, False]]
    padded = pad_to_square(np.zeros((2, 6, 3), np.uint8))
    assert padded.shape == (6, 6, 3) and padded[0].min() == 255 and padded[2:4].max() == 0


def test_edge_styles():
    image, mask = _car(1, 128, 128)
    image[mask == 0] = 255
    # Texture inside the object (2-px blocks): Canny traces it, the sketch style should not.
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(-60, 60, (64, 64)).astype(np.float32), (128, 128),
                         interpolation=cv2.INTER_NEAREST)[:, :, None]
    noisy = np.where(mask[:, :, None] > 0, np.clip(image + texture, 0, 255), image).astype(np.uint8)
    canny = canny_edges(noisy, mask=mask)
    sketch = sketch_edges(noisy, mask=mask)
    for edges in (canny, sketch):
        assert edges.shape == (128, 128) and edges.dtype == np.uint8
        assert set(np.unique(edges)) <= {0, 255} and (edges == 255).mean() > 0.5  # strokes on white
    components = [cv2.connectedComponents((e == 0).astype(np.uint8))[0] for e in (canny, sketch)]
    assert components[1] < components[0] / 2, components  # fewer, connected strokes
    assert canny_edges(image, rgb=True).shape == (128, 128, 3)
    # Auto thresholds from the object's median: a dark picture still has its outline found,
    # where fixed thresholds (100, 200) find nothing.
    dark = (image // 6).astype(np.uint8)
    assert cv2.Canny(cv2.cvtColor(dark, cv2.COLOR_RGB2GRAY), 100, 200).max() == 0
    assert (canny_edges(dark, mask=mask) == 0).sum() > 0.6 * (canny_edges(image, mask=mask) == 0).sum()


def _runs(row):
    """Number of separate dark runs along one row of an edge image."""
    dark = np.concatenate([[0], (row == 0).astype(int), [0]])
    return int((np.diff(dark) == 1).sum())


def test_sketch_draws_a_thick_line_once():
    ring = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(ring, (64, 64), 40, (0, 0, 0), 4)  # a dark outline ~4 px wide, like an emoji at 128
    assert _runs(canny_edges(ring)[64]) == 4      # Canny: both sides of the line, left and right
    assert _runs(sketch_edges(ring)[64]) == 2     # sketch: one stroke per side of the ring


def test_object_id():
    assert object_id("0cdf5b5d0ce1_01") == "0cdf5b5d0ce1" and object_id("holiday") == "holiday"
    assert {object_id(s) for s in ("IMG_0001", "IMG_0002", "photo_12")} == {"IMG_0001", "IMG_0002", "photo_12"}


def test_cli_prepare(carvana, tmp_path, capsys):
    images, masks = carvana
    code = main(["prepare", "--images", str(images), "--masks", str(masks), "--out",
                 str(tmp_path / "cli"), "--size", "16", "--edge-style", "sketch", "--val-cars", "1"])
    assert code == 0 and "12 train + 2 val" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["edge_style"] == "sketch"
