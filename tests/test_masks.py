"""Masks made from photos without masks (data/masks.py), on small synthetic studio photos.

A studio photo here: a near-white wall with big grey letters across it, a grey floor below the
horizon, and a "car" (body, dark windows, black tyres) standing on the floor in front of the
letters - the layout of Carvana's photos, where the car's roof hides part of the lettering.
"""

import json

import cv2
import numpy as np
import pytest

from pix2pix_lib.cli import main
from pix2pix_lib.data import load_rgb, prepare_masked_photos
from pix2pix_lib.data.masks import auto_mask, backdrop_of, object_masks, object_seeds, static_studio

H, W = 120, 180


def studio_photo(body=(40, 70, 190), *, cx=90, width=110, seed=0):
    """(photo (H, W, 3) uint8, true mask (H, W) bool) of a car of colour `body` centred at cx."""
    rng = np.random.default_rng(seed)
    image = np.empty((H, W, 3), np.uint8)
    image[:50] = 238  # the wall
    image[50:] = np.linspace(175, 200, H - 50, dtype=np.uint8)[:, None, None]  # the floor, lit from the front
    cv2.putText(image, "CARVANA", (4, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.45, (112, 112, 112), 5)  # grey letters
    car = np.zeros((H, W), np.uint8)
    left, right = cx - width // 2, cx + width // 2
    cv2.rectangle(car, (left, 62), (right, 92), 1, -1)                      # the body
    cv2.ellipse(car, (cx - 4, 62), (width // 3, 24), 0, 180, 360, 1, -1)    # the cabin, up into the letters
    for x in (left + 20, right - 20):
        cv2.circle(car, (x, 92), 11, 1, -1)                                 # the tyres
    image[car > 0] = body
    cv2.ellipse(image, (cx - 4, 62), (width // 3 - 6, 18), 0, 180, 360, (35, 38, 45), -1)  # windows
    for x in (left + 20, right - 20):
        cv2.circle(image, (x, 92), 11, (20, 20, 20), -1)
        cv2.circle(image, (x, 92), 5, (150, 150, 150), -1)                  # the wheel's rim
    noise = rng.normal(0, 3, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image, car > 0


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_coloured_car_found_and_letters_and_floor_left_out():
    image, truth = studio_photo()
    mask, problem = auto_mask(image)
    assert problem is None and mask.shape == truth.shape
    assert iou(mask, truth) > 0.9
    assert not mask[:10].any() and not mask[-8:].any()  # the wall above, the floor in front
    letters = (image.mean(axis=2) < 150) & ~truth
    letters[55:] = False  # the letters only (the wheels' shadows aside)
    assert (mask & letters).sum() < 0.05 * letters.sum()


def test_seeds_are_the_object_not_the_studio():
    image, truth = studio_photo(body=(200, 40, 40))
    small = image  # already below the working size
    seeds = object_seeds(small)
    assert seeds.sum() > 0.3 * truth.sum() and (seeds & ~truth).sum() < 0.02 * seeds.sum()


def test_white_car_on_white_wall_is_masked_well_or_dropped_with_a_reason():
    image, truth = studio_photo(body=(240, 240, 238))
    mask, problem = auto_mask(image)
    # Either a good mask or an honest refusal - never a half car presented as a car.
    assert (problem is None and iou(mask, truth) > 0.8) or (mask is None and problem)


def test_empty_studio_has_no_object():
    image, _ = studio_photo()
    empty = studio_photo(body=(238, 238, 238))[0]
    empty[:] = np.where(np.arange(H)[:, None, None] < 50, 238, 188)
    mask, problem = auto_mask(empty)
    assert mask is None and "no object" in problem


def test_views_of_one_object_checked_together(monkeypatch):
    views = {f"car_{i:02d}": studio_photo(cx=80 + 5 * i, width=100 + 4 * i, seed=i)[0] for i in range(4)}
    masks, dropped = object_masks(views)
    assert sorted(masks) == sorted(views) and dropped == {}
    # A view whose mask lost its top half (a pale roof taken for the wall) is dropped, with the reason.
    import pix2pix_lib.data.masks as masks_module
    real = masks_module.auto_mask

    def half_of_one(image, **kw):
        mask, problem = real(image, **kw)
        if image is views["car_02"]:
            mask = mask.copy()
            mask[:75] = False
        return mask, problem
    monkeypatch.setattr(masks_module, "auto_mask", half_of_one)
    masks, dropped = object_masks(views)
    assert "car_02" not in masks and "as tall as" in dropped["car_02"] and len(masks) == 3


def test_prepare_without_masks_makes_them_and_counts_the_drops(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    for car in range(4):
        for angle in (1, 2, 3):
            image, _ = studio_photo(body=(40 + 50 * car, 90, 200 - 40 * car), cx=80 + 4 * angle, seed=car * 3 + angle)
            cv2.imwrite(str(images / f"{car:06d}abcdef_{angle:02d}.png"), image[:, :, ::-1])
    blank = np.where(np.arange(H)[:, None, None] < 50, 238, 188).astype(np.uint8).repeat(W, axis=1)
    cv2.imwrite(str(images / "000003abcdef_04.png"), blank)  # a view without a car: no mask, dropped
    out = prepare_masked_photos(images, None, tmp_path / "pairs", size=64, val_cars=1, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 9, "val": 3, "skipped": 0, "masks_dropped": 1}
    assert "no object" in manifest["masks_dropped"]["000003abcdef_04"]
    pair = load_rgb(sorted((out / "train").glob("*.png"))[0])
    b = pair[:, 64:]
    assert (b[:8] > 245).all()  # the wall and its letters are gone: white above the car
    assert sorted(p.name for p in images.iterdir())[0] == "000000abcdef_01.png"  # inputs untouched
    assert len(list(images.iterdir())) == 13


def test_cli_prepare_without_masks_says_so(tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    for car in range(3):
        image, _ = studio_photo(body=(200, 60 + 60 * car, 40), seed=car)
        cv2.imwrite(str(images / f"{car:06d}abcdef_01.png"), image[:, :, ::-1])
    assert main(["prepare", "--images", str(images), "--out", str(tmp_path / "o"), "--size", "32",
                 "--val-cars", "1"]) == 0
    assert "2 train + 1 val pairs (0 skipped, 0 left out for a failed made mask" in capsys.readouterr().out


def test_auto_mask_refuses_what_is_not_a_photo():
    with pytest.raises(ValueError, match="uint8"):
        auto_mask(np.zeros((10, 10, 3), np.float32))


def test_backdrop_from_the_views_keeps_the_letters_out_and_the_roof_in():
    # Six views of one car on a turntable: the studio stays, the car moves (and changes length).
    shots = [studio_photo(body=(180, 40, 40), cx=70 + 8 * i, width=96 + 6 * i, seed=i) for i in range(6)]
    views = {f"car_{i:02d}": image for i, (image, _) in enumerate(shots)}
    backdrop = backdrop_of(list(views.values()))
    median, steady = backdrop
    letters = (shots[0][0].mean(axis=2) < 150)
    letters[50:] = False
    letters &= ~np.any([truth for _, truth in shots], axis=0)  # letters never hidden by the car
    assert steady[letters].mean() > 0.9 and median[letters].mean() < 135  # the letters, not the car
    studio = static_studio(shots[3][0], backdrop)
    assert (studio & shots[3][1]).sum() < 0.02 * shots[3][1].sum()  # the car itself is never "studio"
    masks, dropped = object_masks(views)
    assert dropped == {}
    for name, (_, truth) in zip(views, shots):
        assert iou(masks[name], truth) > 0.9
    assert backdrop_of(list(views.values())[:4]) is None  # too few views to out-vote the car
