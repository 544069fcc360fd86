"""Doodle augmentations: shapes kept, B untouched by appearance changes, A and B warped together,
repeatable from the generator's seed; the robustness variants; the stroke tools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_lib.data.paired import PairedImageDataset, load_rgb, make_pair_image, split_pair_array
from pix2pix_lib.data.sketch_augment import VARIANT_KINDS, DoodleAugment, change_width, make_doodle_variants, perturb_sketch, write_robustness_sets
from pix2pix_lib.strokes import estimate_stroke_width, normalize_stroke_width, skeletonize

S = 64


def line_art(size: int = S, width: int = 2) -> torch.Tensor:
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    d.ellipse([size // 6, size // 6, size * 5 // 6, size * 5 // 6], outline="black", width=width)
    d.line([(size // 3, size // 2), (size * 2 // 3, size // 2)], fill="black", width=width)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous()  # (3, S, S) uint8


def colour_target(size: int = S) -> torch.Tensor:
    """A smooth two-channel ramp: every pixel has its own colour, so any warp shows."""
    ys, xs = np.mgrid[0:size, 0:size]
    img = np.stack([xs * 255 // (size - 1), ys * 255 // (size - 1), np.full_like(xs, 128)], axis=0)
    return torch.from_numpy(img.astype(np.uint8))


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_dtypes_and_determinism():
    aug = DoodleAugment()
    a, b = line_art(), colour_target()
    for seed in range(6):
        a1, b1 = aug(a, b, g(seed))
        a2, b2 = aug(a, b, g(seed))
        assert a1.shape == a.shape and b1.shape == b.shape
        assert a1.dtype == torch.uint8 and b1.dtype == torch.uint8
        assert torch.equal(a1, a2) and torch.equal(b1, b2)
    outs = [aug(a, b, g(s))[0] for s in range(6)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    assert torch.equal(a, line_art())  # inputs are not modified in place


def test_appearance_only_leaves_b_unchanged_and_changes_a():
    aug = DoodleAugment(p_geometric=0.0, p_width=1.0, p_break=1.0, p_fade=1.0)
    a, b = line_art(), colour_target()
    changed = 0
    for seed in range(5):
        a1, b1 = aug(a, b, g(seed))
        assert torch.equal(b1, b)
        changed += int(not torch.equal(a1, a))
    assert changed == 5


def test_geometric_warp_is_the_same_for_a_and_b():
    # Feed the same picture as A and B: with appearance changes off, the outputs must be equal.
    aug = DoodleAugment(p_geometric=1.0, p_width=0.0, p_break=0.0, p_fade=0.0, wobble=0.02)
    b = colour_target()
    for seed in range(4):
        a1, b1 = aug(b.clone(), b, g(seed))
        assert torch.equal(a1, b1)
        assert not torch.equal(b1, b)  # and it did move
    # the line art moves with the target: the ink's centre moves the same way as the ramp says
    a, b = line_art(), colour_target()
    a1, b1 = aug(a, b, g(0))
    ink = a1[0].numpy() < 128
    ys, xs = np.nonzero(ink)
    # where the warped ink lies, B holds the source coordinates; they must land on original ink
    src_x = b1[0].numpy()[ys, xs].astype(float) * (S - 1) / 255
    src_y = b1[1].numpy()[ys, xs].astype(float) * (S - 1) / 255
    orig = a[0].numpy() < 128
    hits = orig[np.clip(np.round(src_y).astype(int), 0, S - 1), np.clip(np.round(src_x).astype(int), 0, S - 1)]
    near = orig | np.roll(orig, 1, 0) | np.roll(orig, -1, 0) | np.roll(orig, 1, 1) | np.roll(orig, -1, 1)
    hits_near = near[np.clip(np.round(src_y).astype(int), 0, S - 1), np.clip(np.round(src_x).astype(int), 0, S - 1)]
    assert hits_near.mean() > 0.9, (hits.mean(), hits_near.mean())


def test_bad_inputs():
    aug = DoodleAugment()
    with pytest.raises(ValueError):
        aug(line_art().float(), colour_target(), g(0))
    with pytest.raises(ValueError):
        aug(line_art(64), colour_target(32), g(0))


def test_change_width_thickens_and_thins():
    a = line_art(128, width=5)[0].numpy()
    base = (a < 128).sum()
    assert (change_width(a, 2.0) < 128).sum() > 1.3 * base
    assert (change_width(a, -1.5) < 128).sum() < 0.8 * base
    assert np.array_equal(change_width(a, 0.1), a)


def test_variants():
    a = line_art(128, width=3)
    variants = make_doodle_variants(a, seed=1)
    assert list(variants) == list(VARIANT_KINDS)
    ink = lambda x: (x[0].numpy() < 128)  # noqa: E731
    width = estimate_stroke_width(ink(a))
    assert estimate_stroke_width(ink(variants["thicker"])) > width + 2
    assert estimate_stroke_width(ink(variants["thinner"])) <= 1.5
    assert ink(variants["incomplete"]).sum() < ink(a).sum()
    assert not torch.equal(variants["shaky"], a)
    for v in variants.values():
        assert v.shape == a.shape and v.dtype == torch.uint8
    assert all(torch.equal(x, y) for x, y in zip(variants.values(), make_doodle_variants(a, seed=1).values()))
    with pytest.raises(ValueError, match="unknown kind"):
        perturb_sketch(a, "smudged")


def test_robustness_sets_are_datasets(tmp_path):
    val = tmp_path / "src" / "val"
    val.mkdir(parents=True)
    for i in range(2):
        make_pair_image(line_art(32).permute(1, 2, 0).numpy(), colour_target(32).permute(1, 2, 0).numpy()).save(val / f"{i}.png")
    roots = write_robustness_sets(val, tmp_path / "robust", seed=0)
    assert set(roots) == set(VARIANT_KINDS)
    sketches = {}
    for i in range(2):
        expected = make_doodle_variants(line_art(32), seed=1000 * i)  # the i-th file's variants
        for kind, root in roots.items():
            a, b = split_pair_array(load_rgb(root / "val" / f"{i}.png"))
            assert np.array_equal(a, expected[kind].permute(1, 2, 0).numpy()), (i, kind)  # A perturbed
            assert np.array_equal(b, colour_target(32).permute(1, 2, 0).numpy())  # B copied as it was
            sketches[kind, i] = a
    assert len({sketches[k, 0].tobytes() for k in VARIANT_KINDS}) == len(VARIANT_KINDS)  # kinds differ
    assert len(PairedImageDataset(roots[VARIANT_KINDS[0]], "val", image_size=32)) == 2

    # A bad file half-way: no new set appears, and the complete earlier one is kept as it was.
    (val / "2.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"2\.png"):
        write_robustness_sets(val, tmp_path / "robust", seed=0)
    assert sorted(p.name for p in (tmp_path / "robust").iterdir()) == sorted(VARIANT_KINDS)
    assert all(len(list((root / "val").iterdir())) == 2 for root in roots.values())
    with pytest.raises(ValueError, match=r"2\.png"):
        write_robustness_sets(val, tmp_path / "fresh", seed=0)
    assert not (tmp_path / "fresh").exists() or not list((tmp_path / "fresh").iterdir())


def test_stroke_tools():
    for width in (3, 7, 12):
        im = Image.new("L", (128, 128), 0)
        ImageDraw.Draw(im).line([(10, 20), (118, 100)], fill=1, width=width)
        mask = np.asarray(im) > 0
        assert abs(estimate_stroke_width(mask) - width) <= 1.5  # a median on a pixel grid
        skeleton = skeletonize(mask)
        assert skeleton.sum() < mask.sum() and (skeleton & ~mask).sum() == 0
        assert abs(estimate_stroke_width(normalize_stroke_width(mask, 5)) - 5) <= 1.5
    assert estimate_stroke_width(np.zeros((8, 8), bool)) == 0.0
