"""The paper's networks: shapes, parameter counts, receptive fields, init, dropout placement."""

import pytest
import torch
from torch import nn

from pix2pix_lib.models import (
    EncoderDecoderGenerator,
    PatchDiscriminator,
    UNetGenerator,
    build_generator,
    count_parameters,
    n_layers_for_patch,
    receptive_field,
    unet_depth_for,
)


@pytest.mark.parametrize("size,depth", [(64, 6), (128, 7), (256, 8)])
def test_generator_maps_image_to_same_shape_in_tanh_range(size, depth):
    g = build_generator(image_size=size, ngf=8)
    assert g.depth == depth == unet_depth_for(size)
    y = g(torch.randn(2, 3, size, size))
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1


def test_generator_bottleneck_is_one_by_one():
    g = build_generator(image_size=128, ngf=8)
    x = torch.randn(1, 3, 128, 128)
    for block in g.encoder:
        x = block(x)
    assert x.shape == (1, 64, 1, 1)  # 8 * ngf channels at 1x1


def test_parameter_counts_match_reference_implementation():
    # junyanz/pytorch-CycleGAN-and-pix2pix: unet_256 (ngf 64, batch norm) and basic D (ndf 64).
    assert count_parameters(build_generator(image_size=256, ngf=64, norm="batch")) == 54_413_955
    assert count_parameters(PatchDiscriminator(in_channels=6, ndf=64, n_layers=3, norm="batch")) == 2_768_705


@pytest.mark.parametrize("patch", [1, 16, 70, 286])
def test_patchgan_receptive_fields(patch):
    d = PatchDiscriminator(ndf=8, n_layers=n_layers_for_patch(patch))
    assert receptive_field(d) == patch


def test_patchgan_output_map_sizes_at_256():
    a = b = torch.randn(1, 3, 256, 256)
    assert PatchDiscriminator(ndf=8, n_layers=3)(a, b).shape == (1, 1, 30, 30)
    assert PatchDiscriminator(ndf=8, n_layers=0)(a, b).shape == (1, 1, 256, 256)
    assert PatchDiscriminator(ndf=8, n_layers=1)(a, b).shape == (1, 1, 126, 126)


def test_unknown_patch_size_and_bad_input_raise_clear_errors():
    with pytest.raises(ValueError, match="patch_size must be one of"):
        n_layers_for_patch(32)
    with pytest.raises(ValueError, match="power of two"):
        unet_depth_for(100)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_generator(image_size=64, ngf=8)(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="divisible by 64"):
        build_generator(image_size=64, ngf=8)(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="unknown norm"):
        UNetGenerator(norm="group")


def test_weights_initialised_normal_0_02():
    g = build_generator(image_size=256, ngf=64)
    convs = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(convs.mean().item()) < 1e-3
    assert convs.std().item() == pytest.approx(0.02, rel=0.02)
    scales = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01)  # scales near 1, not re-initialised to N(0, .02)
    biases = [m.bias for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert all((b == 0).all() for b in biases)


def test_no_norm_on_first_encoder_layer_and_bottleneck():
    g = build_generator(image_size=64, ngf=8)
    has_norm = [any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) for block in g.encoder]
    assert has_norm == [False, True, True, True, True, False]


def test_dropout_in_three_decoder_blocks_nearest_bottleneck():
    g = build_generator(image_size=256, ngf=8)
    has_dropout = [any(isinstance(m, nn.Dropout) for m in block.modules()) for block in g.decoder]
    assert has_dropout == [True, True, True, False, False, False, False]
    assert not any(isinstance(m, nn.Dropout) for m in build_generator(image_size=64, ngf=8, dropout=False).modules())


def test_instance_norm_variant_uses_biases_and_works_at_batch_one():
    g = build_generator(image_size=64, ngf=8, norm="instance")
    assert all(m.bias is not None for m in g.modules() if isinstance(m, nn.Conv2d))
    assert g(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_encoder_decoder_has_no_skips_and_fewer_parameters():
    unet = build_generator(image_size=64, ngf=8)
    plain = EncoderDecoderGenerator(depth=6, ngf=8)
    assert not plain.skips
    assert count_parameters(plain) < count_parameters(unet)
    assert plain(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_skip_connections_carry_input_detail():
    # Through its skips a U-Net output pixel depends most on the input pixels right under it; an
    # encoder-decoder spreads that dependence over the whole image (all paths cross the 1x1 bottleneck).
    for model, expect_local in [(build_generator(image_size=64, ngf=8, dropout=False), True),
                                (EncoderDecoderGenerator(depth=6, ngf=8, dropout=False), False)]:
        x = torch.randn(2, 3, 64, 64, requires_grad=True)
        model(x)[0, :, 32, 32].sum().backward()
        grad = x.grad[0].abs().sum(0)  # (64, 64): sensitivity of one output pixel to each input pixel
        local, overall = grad[28:37, 28:37].mean(), grad.mean()
        assert (local > 3 * overall) == expect_local, (type(model).__name__, local / overall)


@pytest.mark.parametrize("n_layers, smallest", [(1, 8), (3, 32), (5, 128)])
def test_patchgan_names_the_smallest_image_it_can_judge(n_layers, smallest):
    d = PatchDiscriminator(ndf=4, n_layers=n_layers)
    x = torch.zeros(2, 3, smallest, smallest)
    assert d(x, x).shape[-2:] == (2, 2)  # the smallest size leaves a 2x2 map of patches
    half = torch.zeros(2, 3, smallest // 2, smallest // 2)
    with pytest.raises(ValueError, match=f"n_layers={n_layers} needs images of at least {smallest}x{smallest} px"):
        d(half, half)
