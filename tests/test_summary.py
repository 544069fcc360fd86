"""Layer tables and PatchGAN patch geometry (pix2pix_lib/models/summary.py)."""

import pytest
import torch
from torch import nn

from pix2pix_lib.models import PatchDiscriminator, build_generator, count_parameters, receptive_field
from pix2pix_lib.models.summary import format_table, layer_table, patch_box, patch_geometry


def test_unet_table_at_64_goes_down_to_one_by_one_and_back():
    g = build_generator(image_size=64, ngf=8)
    rows = layer_table(g, torch.zeros(1, 3, 64, 64))
    names = [r.name for r in rows]
    assert names == [f"enc{i}" for i in range(6)] + [f"dec{j}" for j in range(5)] + ["to_image"]
    # Encoder: 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1, channels 8, 16, 32, 64, 64, 64.
    assert [r.out_shape for r in rows[:6]] == [(1, 8, 32, 32), (1, 16, 16, 16), (1, 32, 8, 8),
                                               (1, 64, 4, 4), (1, 64, 2, 2), (1, 64, 1, 1)]
    assert rows[5].note.startswith("bottleneck")
    # Decoder inputs carry the skip: dec1 reads dec0's 64 channels + enc4's 64.
    assert rows[6].in_shape == (1, 64, 1, 1)
    assert rows[7].in_shape == (1, 128, 2, 2)
    assert rows[-1].in_shape == (1, 16, 32, 32)   # dec4 (8) + enc0 (8)
    assert rows[-1].out_shape == (1, 3, 64, 64)   # final shape = input shape
    assert [r.kind for r in rows[6:9]] == ["CD64", "CD64", "CD32"]  # dropout nearest the bottleneck
    assert rows[9].kind == "C16"
    assert sum(r.params for r in rows) == count_parameters(g)


def test_encoder_decoder_table_has_no_skip_channels():
    g = build_generator(image_size=64, ngf=8, skips=False)
    rows = layer_table(g, torch.zeros(1, 3, 64, 64))
    dec1 = next(r for r in rows if r.name == "dec1")
    assert dec1.in_shape == (1, 64, 2, 2)  # no concatenation
    assert rows[-1].note == ""
    assert sum(r.params for r in rows) == count_parameters(g)


def test_paper_generator_table_totals_reference_count():
    rows = layer_table(build_generator(image_size=256), torch.zeros(1, 3, 256, 256))
    assert sum(r.params for r in rows) == 54_413_955
    assert format_table(rows).splitlines()[-1].split() == ["total", "54,413,955"]


def test_patchgan_table_shapes_fields_and_params():
    d = PatchDiscriminator(ndf=8)
    x = torch.zeros(1, 3, 64, 64)
    rows = layer_table(d, x, x)
    assert [r.out_shape[-1] for r in rows] == [32, 16, 8, 7, 6]
    assert rows[0].in_shape == (1, 6, 64, 64)     # A and B stacked
    assert rows[-1].out_shape == (1, 1, 6, 6)
    assert [r.note.split("field ")[1].split(",")[0] for r in rows] == ["4", "10", "22", "46", "70"]
    assert "no norm" in rows[0].note and "no norm" not in rows[1].note
    assert sum(r.params for r in rows) == count_parameters(d)


def test_layer_table_leaves_model_mode_and_batchnorm_statistics_alone():
    g = build_generator(image_size=64, ngf=8)
    g.train()
    before = g.encoder[1][1].running_mean.clone()
    layer_table(g, torch.randn(2, 3, 64, 64))
    assert g.training
    assert torch.equal(g.encoder[1][1].running_mean, before)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in g.modules())


def test_generic_module_gets_one_row_per_child():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())
    rows = layer_table(model, torch.zeros(2, 3, 8, 8))
    assert [(r.name, r.kind, r.out_shape, r.params) for r in rows] == [
        ("0", "Conv2d", (2, 4, 6, 6), 112), ("1", "ReLU", (2, 4, 6, 6), 0), ("2", "Flatten", (2, 144), 0)]
    with pytest.raises(ValueError, match="example input"):
        layer_table(model)


def test_format_table_aligns_columns():
    rows = layer_table(build_generator(image_size=64, ngf=8), torch.zeros(1, 3, 64, 64))
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:2] == ["block", "kind"]
    assert len(lines) == len(rows) + 4          # header, rule, rows, rule, total
    enc5 = next(line for line in lines if line.startswith("enc5"))
    assert "64 x 2 x 2" in enc5 and "64 x 1 x 1" in enc5
    param_end = lines[0].index("params") + len("params")
    assert all(line[param_end - 1].isdigit() for line in lines[2:-2])  # numbers right-aligned


@pytest.mark.parametrize("n_layers,field,stride", [(0, 1, 1), (1, 16, 2), (3, 70, 8), (5, 286, 32)])
def test_patch_geometry_matches_receptive_field(n_layers, field, stride):
    d = PatchDiscriminator(ndf=4, n_layers=n_layers)
    got_field, got_stride, _ = patch_geometry(d)
    assert (got_field, got_stride) == (field, stride)
    assert receptive_field(d) == field


def test_patch_box_is_the_square_an_output_pixel_depends_on():
    # Gradient check: output pixel (row, col) depends on exactly the pixels inside patch_box.
    d = PatchDiscriminator(ndf=4, n_layers=3, norm="none")
    assert patch_geometry(d) == (70, 8, 23)
    assert patch_box(d, 0, 0) == (-23, -23, 47, 47)
    x = torch.randn(1, 3, 96, 96, requires_grad=True)
    out = d(x, torch.zeros(1, 3, 96, 96))
    row, col = 5, 4
    out[0, 0, row, col].backward()
    nonzero = x.grad.abs().sum(dim=(0, 1)) > 0          # (H, W)
    ys, xs = torch.nonzero(nonzero, as_tuple=True)
    left, top, right, bottom = patch_box(d, row, col)
    assert (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1) == (left, top, right, bottom)
