"""PairedImageDataset: the A|B format, identical jitter for A and B, bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_lib.data import PairedImageDataset, load_rgb, make_pair_image
from pix2pix_lib.data import paired as paired_module


def _asymmetric_rgb(h, seed):
    """An image where every crop and flip shows: a gradient plus noise, (h, h, 3) uint8."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, h, dtype=np.float32)
    img = ramp[None, :, None] + ramp[:, None, None] * 0.2 + rng.integers(0, 50, (h, h, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def pair_root(tmp_path):
    """root/train and root/val with 3 pairs each; B = A with its colour channels reversed."""
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        for i in range(3):
            a = _asymmetric_rgb(40, i)
            make_pair_image(a, a[:, :, ::-1]).save(tmp_path / split / f"{i}.png")
    return tmp_path


def test_item_shapes_range_and_path(pair_root):
    ds = PairedImageDataset(pair_root, "train", image_size=32)
    assert len(ds) == 3 and ds.load_size == round(32 * 286 / 256)  # 36
    item = ds[0]
    assert set(item) == {"A", "B", "path"}
    for key in "AB":
        assert item[key].shape == (3, 32, 32) and item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
    assert item["path"].endswith("0.png")


def test_jitter_moves_a_and_b_together(pair_root):
    ds = PairedImageDataset(pair_root, "train", image_size=32)
    seen = set()
    for _ in range(20):
        item = ds[1]
        # B was A with channels reversed; any crop/flip applied to both keeps that exactly.
        assert torch.equal(item["B"], item["A"].flip(0))
        seen.add(item["A"].sum().item())
    assert len(seen) > 5, "the random crop / flip never changed the picture"


def test_flip_happens_and_can_be_switched_off(pair_root):
    ds = PairedImageDataset(pair_root, "train", image_size=40, load_size=40, flip=True)
    outs = {tuple(ds[0]["A"][0, 0, :3].tolist()) for _ in range(30)}
    assert len(outs) == 2  # no crop jitter at load_size == image_size: only mirror / not
    ds = PairedImageDataset(pair_root, "train", image_size=40, load_size=40, flip=False)
    first = ds[0]["A"]
    assert all(torch.equal(ds[0]["A"], first) for _ in range(5))


def test_val_split_is_deterministic_resize(pair_root):
    ds = PairedImageDataset(pair_root, "val", image_size=20)
    assert ds.load_size == 20 and not ds.flip
    first = ds[2]["A"]
    assert all(torch.equal(ds[2]["A"], first) for _ in range(8))  # no random crop or flip on val
    # Downscaled 40 -> 20, not cropped: the mean colour stays that of the whole half.
    a = load_rgb(pair_root / "val" / "2.png")[:, :40].astype(np.float32) / 127.5 - 1
    assert abs(ds[2]["A"].mean().item() - a.mean()) < 0.02


def test_direction_b_to_a_swaps_halves(tmp_path):
    (tmp_path / "val").mkdir()
    red, blue = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    make_pair_image(red, blue).save(tmp_path / "val" / "x.png")
    a_to_b = PairedImageDataset(tmp_path, "val", image_size=8)[0]
    b_to_a = PairedImageDataset(tmp_path, "val", image_size=8, direction="BtoA")[0]
    assert a_to_b["A"][0].mean() == 1 and a_to_b["B"][2].mean() == 1
    assert b_to_a["A"][2].mean() == 1 and b_to_a["B"][0].mean() == 1
    with pytest.raises(ValueError, match="direction"):
        PairedImageDataset(tmp_path, "val", direction="AB")


def test_augment_gets_uint8_pair_after_jitter(pair_root):
    calls = []

    def augment(a, b, generator):
        calls.append((a.dtype, tuple(a.shape), type(generator)))
        return torch.zeros_like(a), b  # blank the sketch: must show in the output

    item = PairedImageDataset(pair_root, "train", image_size=32, augment=augment)[0]
    assert calls == [(torch.uint8, (3, 32, 32), torch.Generator)]
    assert torch.all(item["A"] == -1) and item["B"].max() > -1


def test_cache_decodes_each_file_once(pair_root, monkeypatch):
    count = {"n": 0}
    real = paired_module.load_rgb

    def counting(path):
        count["n"] += 1
        return real(path)

    monkeypatch.setattr(paired_module, "load_rgb", counting)
    ds = PairedImageDataset(pair_root, "train", image_size=32)
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    assert count["n"] == 3
    cached = ds.load_pair(0)
    assert cached[0].dtype == torch.uint8 and cached[0].shape == (3, 36, 36)  # resized once, stored
    uncached = PairedImageDataset(pair_root, "train", image_size=32, cache=False)
    uncached[0], uncached[0]
    assert count["n"] == 5


def test_cache_stops_at_its_budget_and_says_so(pair_root, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_GB", str(2.5 * 3 * 36 * 36 * 2 / 2**30))  # room for two pairs
    ds = PairedImageDataset(pair_root, "train", image_size=32)
    ds.load_pair(0), ds.load_pair(1)
    assert not ds.cache_full
    with pytest.warns(UserWarning, match="cache is full"):
        ds.load_pair(2)
    assert ds.cache_full and len(ds._cache) == 2


def test_modes_grayscale_rgba_16bit(tmp_path):
    gray = Image.fromarray(np.full((4, 8), 100, np.uint8), mode="L")
    rgba = np.zeros((4, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red A, fully transparent B -> white
    sixteen = Image.fromarray(np.full((4, 8), 65535, np.uint16))  # mode I;16
    gray.save(tmp_path / "g.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    sixteen.save(tmp_path / "s.png")
    assert Image.open(tmp_path / "s.png").mode.startswith("I")
    assert load_rgb(tmp_path / "g.png").shape == (4, 8, 3)
    assert (load_rgb(tmp_path / "g.png") == 100).all()
    out = load_rgb(tmp_path / "a.png")
    assert (out[0, 0] == (255, 0, 0)).all() and (out[0, 7] == 255).all()
    assert (load_rgb(tmp_path / "s.png") == 255).all()  # scaled, not clipped garbage


def test_bad_inputs_name_the_file_or_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        PairedImageDataset(tmp_path, "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no"):
        PairedImageDataset(tmp_path, "train")
    Image.new("RGB", (30, 20)).save(tmp_path / "train" / "wide.png")
    ds = PairedImageDataset(tmp_path, "train", image_size=16)
    with pytest.raises(ValueError, match=r"wide\.png.*twice as wide"):
        ds[0]
    (tmp_path / "train" / "wide.png").unlink()
    (tmp_path / "train" / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"junk\.jpg"):
        PairedImageDataset(tmp_path, "train", image_size=16)[0]
    (tmp_path / "train" / "junk.jpg").unlink()
    make_pair_image(_asymmetric_rgb(32, 0), _asymmetric_rgb(32, 1)).save(tmp_path / "train" / "t.png")
    data = (tmp_path / "train" / "t.png").read_bytes()
    (tmp_path / "train" / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.png.*cannot read"):
        PairedImageDataset(tmp_path, "train", image_size=16)[0]


def test_dataloader_batches(pair_root):
    loader = torch.utils.data.DataLoader(PairedImageDataset(pair_root, image_size=16), batch_size=2)
    batch = next(iter(loader))
    assert batch["A"].shape == (2, 3, 16, 16) and len(batch["path"]) == 2
