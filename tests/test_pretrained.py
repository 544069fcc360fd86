"""The reference implementation's pretrained generators: converted exactly, downloaded from a local server.

The reference's own code is never imported. Its state-dict layout comes from a committed list of
key names and shapes (tests/fixtures), and its forward pass is written out below from the
structure its `UnetSkipConnectionBlock` documents: [skip, up] concatenations, a LeakyReLU
entering each inner block (in place, so the skip carries it), a ReLU after each concatenation,
no norm at the bottleneck, Tanh at the end.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import serve_files
from pix2pix_lib import pretrained
from pix2pix_lib.cli import main
from pix2pix_lib.models import build_generator, count_parameters
from pix2pix_lib.models.reference import build_reference_generator
from pix2pix_lib.weights import load_generator

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "reference_unet256_keys.json").read_text())["keys"]


def _reference_state(scale: int = 1, seed: int = 0) -> dict:
    """Random weights in the reference's layout; channels divided by `scale` (8: an ngf-8 U-Net)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in FIXTURE:
        shape = [d if (len(shape) == 4 and i >= 2) or d == 3 else d // scale  # kernels and RGB stay
                 for i, d in enumerate(shape)]
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


def _reference_forward(state: dict, x: torch.Tensor, depth: int = 8) -> torch.Tensor:
    """The reference U-Net in eval mode, from its documented structure (batch norm, dropout off)."""
    def bn(h, name):
        return F.batch_norm(h, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                            state[f"{name}.weight"], state[f"{name}.bias"], training=False, eps=1e-5)

    def conv(h, name):
        return F.conv2d(h, state[f"{name}.weight"], state.get(f"{name}.bias"), stride=2, padding=1)

    def up(h, name):
        return F.conv_transpose2d(h, state[f"{name}.weight"], state.get(f"{name}.bias"), stride=2, padding=1)

    def block(h, prefix, level):
        skip = F.leaky_relu(h, 0.2)  # in place in the reference: the skip carries it
        if level == depth - 1:  # innermost: down conv, ReLU, up conv, norm
            out = bn(up(F.relu(conv(skip, prefix + "1")), prefix + "3"), prefix + "4")
        else:
            inner = block(bn(conv(skip, prefix + "1"), prefix + "2"), prefix + "3.model.", level + 1)
            out = bn(up(F.relu(inner), prefix + "5"), prefix + "6")
        return torch.cat([skip, out], 1)

    inner = block(conv(x, "model.model.0"), "model.model.1.model.", 1)
    return torch.tanh(up(F.relu(inner), "model.model.3"))


def test_the_fixture_maps_onto_our_256_px_u_net_key_for_key_and_shape_for_shape():
    ours = build_reference_generator(image_size=256).state_dict()
    converted = pretrained.reference_to_ours({k: torch.zeros(s) for k, s in FIXTURE}, depth=8)
    assert sorted(converted) == sorted(ours)
    assert all(tuple(converted[k].shape) == tuple(v.shape) for k, v in ours.items())
    assert sum(torch.Size(s).numel() for k, s in FIXTURE if "running" not in k and "num_batches" not in k) \
        == count_parameters(build_generator(image_size=256)) == 54_413_955


def test_converted_weights_compute_what_the_reference_computes():
    state = _reference_state(scale=8)  # ngf 8: the same structure, small enough to be quick
    generator = build_reference_generator(image_size=256, ngf=8)
    generator.load_state_dict(pretrained.reference_to_ours(state, depth=8))
    x = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _reference_forward(state, x)
        assert (generator.eval()(x) - expected).abs().max() <= 1e-5
        course = build_generator(image_size=256, ngf=8)  # the paper-text layout is another function
        course.load_state_dict(pretrained.reference_to_ours(state, depth=8))
        assert (course.eval()(x) - expected).abs().max() > 1e-2
    noisy = [j for j, block in enumerate(generator.decoder) if isinstance(block[2], torch.nn.Dropout)]
    assert noisy == [1, 2, 3]  # one block further out than the course's [0, 1, 2]


@pytest.fixture
def model_server():
    files = {}
    server, url = serve_files(files)
    yield files, f"{url}/models-pytorch"
    server.shutdown()


def test_download_model_converts_a_served_reference_file(model_server, tmp_path, capsys):
    files, url = model_server
    state = _reference_state(scale=8, seed=3)
    buffer = io.BytesIO()
    torch.save({f"module.{k}": v for k, v in state.items()}, buffer)  # as saved from DataParallel
    files["edges2shoes.pth"] = buffer.getvalue()
    assert main(["download-model", "edges2shoes", "--out", str(tmp_path / "w"), "--base-url", url]) == 0
    assert "shoe edges -> shoe photo" in capsys.readouterr().out
    generator, card = load_generator(tmp_path / "w" / "edges2shoes.pt")
    assert card.network["layout"] == "reference" and card.note == "edges2shoes: shoe edges -> shoe photo (pairs AtoB)"
    assert "UT Zappos50K" in card.licence["license"] and card.source == f"{url}/edges2shoes.pth"
    assert card.sketch_style == pretrained.SKETCH_STYLES["edges2shoes"]
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert (generator(x) - _reference_forward(state, x)).abs().max() <= 1e-5
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["edges2shoes.pt"]  # the raw file is gone
    assert main(["download-model", "day2night", "--out", str(tmp_path / "w"), "--base-url", url]) == 2  # 404
    assert "HTTP 404" in capsys.readouterr().err


def test_a_download_that_is_no_model_is_not_kept_for_the_next_try(model_server, tmp_path):
    files, url = model_server
    files["edges2shoes.pth"] = b"<html>a captive portal's page</html>"
    for _ in range(2):  # the second try downloads again instead of reusing the bad file
        with pytest.raises(ValueError, match="not a readable reference generator file"):
            pretrained.download_model("edges2shoes", tmp_path / "w", base_url=url, progress=False)
        assert list((tmp_path / "w").iterdir()) == []
