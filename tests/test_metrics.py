"""Metrics: known values on known inputs, FID / LPIPS only from local weights, the evaluate verb."""

import json
import math

import pytest
import torch
from torch import nn

from pix2pix_lib.cli import main
from pix2pix_lib.metrics import (
    PerceptualMetrics,
    build_fid,
    build_lpips,
    evaluate_predictions,
    format_metrics_table,
    image_metrics,
    perceptual_weights_path,
)
from conftest import write_tiny_pairs


def batches(a, b):
    return [{"A": a, "B": b}]


def test_identical_images_score_perfectly():
    b = torch.rand(2, 3, 16, 16) * 2 - 1
    m = evaluate_predictions(lambda a: b.clone(), batches(torch.zeros_like(b), b))
    assert m["l1"] == 0 and m["l1_changed"] == 0
    assert m["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert m["psnr"] == 100  # infinite PSNR is capped
    assert m["sharpness"] == pytest.approx(1.0) and m["colourfulness"] == pytest.approx(1.0)


def test_colourfulness_is_zero_for_grey_outputs():
    real = -torch.ones(2, 3, 8, 8)
    real[:, 0] = 1.0                      # pure red targets: chroma 1 in [0, 1] units
    grey = torch.zeros(2, 3, 8, 8)        # mid grey: chroma 0
    half = real * 0.5                     # R 0.75, G = B 0.25: chroma 0.5
    assert evaluate_predictions(lambda a: grey, batches(real, real))["colourfulness"] == 0
    assert evaluate_predictions(lambda a: half, batches(real, real))["colourfulness"] == pytest.approx(0.5)


def test_constant_offset_gives_known_l1_and_psnr():
    b = torch.zeros(3, 3, 16, 16)         # 0.5 in [0, 1]
    fake = b + 0.2                        # 0.6 in [0, 1]: off by 0.1 everywhere
    m = evaluate_predictions(lambda a: fake, batches(b - 1, b))
    assert m["l1"] == pytest.approx(0.1, abs=1e-6)
    assert m["psnr"] == pytest.approx(20.0, abs=1e-3)  # 10 log10(1 / 0.1^2)
    assert m["sharpness"] == 0  # flat target, flat output: no edges on either side


def test_l1_changed_counts_only_pixels_where_sketch_and_target_differ():
    b = torch.zeros(1, 3, 8, 8)
    a = b.clone()
    a[..., :2, :] = -1.0                  # the sketch differs from the target on 2 of 8 rows
    err_outside = b.clone()
    err_outside[..., 2:, :] += 0.5        # errors only where sketch == target
    m = evaluate_predictions(lambda x: err_outside, batches(a, b))
    assert m["l1_changed"] == 0 and m["l1"] == pytest.approx(0.25 * 6 / 8)
    err_inside = b.clone()
    err_inside[..., :2, :] += 0.5         # errors only on the changed pixels
    m = evaluate_predictions(lambda x: err_inside, batches(a, b))
    assert m["l1_changed"] == pytest.approx(0.25) and m["l1"] == pytest.approx(0.25 * 2 / 8)


def test_image_metrics_sums_over_batches_of_any_size():
    b = torch.rand(5, 3, 16, 16) * 2 - 1
    fake = (b + 0.1).clamp(-1, 1)
    whole = evaluate_predictions(lambda a: fake, batches(b, b))
    split = evaluate_predictions(lambda a: fake[: len(a)] if len(a) == 2 else fake[2:],
                                 [{"A": b[:2], "B": b[:2]}, {"A": b[2:], "B": b[2:]}])
    for k in whole:
        assert split[k] == pytest.approx(whole[k], rel=1e-5)
    assert image_metrics(fake, b, b)["count"] == 5


def test_fid_and_lpips_are_skipped_with_the_path_when_weights_are_missing(tmp_path, monkeypatch, no_downloads):
    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(tmp_path / "inception.pth"))
    monkeypatch.setenv("PIX2PIX_LPIPS_WEIGHTS", str(tmp_path / "alexnet.pth"))
    assert perceptual_weights_path("fid") == tmp_path / "inception.pth"
    scorer = PerceptualMetrics()
    assert scorer.status == {"fid": f"skipped: weights not found at {tmp_path / 'inception.pth'}",
                             "lpips": f"skipped: weights not found at {tmp_path / 'alexnet.pth'}"}
    b = torch.rand(2, 3, 16, 16) * 2 - 1
    m = evaluate_predictions(lambda a: b, batches(b, b), perceptual=scorer)
    assert "fid" not in m and "lpips" not in m and scorer.skipped == scorer.status  # numbers only; why: apart
    assert m["l1"] == 0  # the other metrics are unaffected


def test_default_weight_paths_are_in_torch_hub_cache(monkeypatch):
    monkeypatch.delenv("PIX2PIX_FID_WEIGHTS", raising=False)
    monkeypatch.delenv("PIX2PIX_LPIPS_WEIGHTS", raising=False)
    hub = torch.hub.get_dir()
    assert str(perceptual_weights_path("fid")).startswith(hub)
    assert perceptual_weights_path("lpips").name == "alexnet-owt-7be5be79.pth"


def test_lpips_from_a_local_alexnet_file(tmp_path, no_downloads):
    import torchvision

    alexnet = torchvision.models.alexnet(weights=None)  # random weights, the layout of the real file
    path = tmp_path / "alexnet.pth"
    torch.save({k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")}, path)
    network, status = build_lpips(path)
    assert status == f"ok: {path}"
    torch.save({"not": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not torchvision AlexNet"):
        build_lpips(tmp_path / "wrong.pth")

    scorer = PerceptualMetrics(fid=False, lpips_weights=path)
    b = torch.rand(4, 3, 64, 64) * 2 - 1
    scorer.update(b, b)
    assert scorer.compute()["lpips"] == pytest.approx(0.0, abs=1e-6)
    scorer = PerceptualMetrics(fid=False, lpips_weights=path)
    scorer.update(-b, b)
    assert scorer.compute()["lpips"] > 0


class Payload:
    """Stands for pickled code in a downloaded file: loading it must never be attempted."""


def test_weights_files_holding_pickled_objects_are_skipped_not_loaded(tmp_path, no_downloads):
    from pix2pix_lib.metrics import build_fid

    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "payload": Payload()}, path)
    for build in (build_fid, build_lpips):
        metric, status = build(path)
        assert metric is None and status.startswith(f"skipped: {path}: not a plain-tensor"), status
        assert "could run code" in status and "weights_only set to False" not in status


class TinyFeatures(nn.Module):
    """A random stand-in for Inception: images in [0, 1] -> 6 features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


def test_fid_computed_with_a_custom_feature_extractor(no_downloads):
    b = torch.rand(16, 3, 16, 16) * 2 - 1
    same = PerceptualMetrics(lpips=False, fid_features=TinyFeatures())
    same.update(b, b)
    shifted = PerceptualMetrics(lpips=False, fid_features=TinyFeatures())
    shifted.update((b * 0.3 + 0.5).clamp(-1, 1), b)
    fid_same, fid_shifted = same.compute()["fid"], shifted.compute()["fid"]
    assert abs(fid_same) < 1e-3 and fid_shifted > 1e-2


def test_fid_needs_two_images():
    scorer = PerceptualMetrics(lpips=False, fid_features=TinyFeatures())
    scorer.update(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    assert scorer.compute() == {}  # numbers only: why there is none is said apart
    assert scorer.skipped["fid"].startswith("skipped: fid needs at least 2 images")


def test_fid_without_weights_never_reaches_torch_fidelity(tmp_path, no_downloads):
    metric, status = build_fid(tmp_path / "missing.pth")
    assert metric is None and status == f"skipped: weights not found at {tmp_path / 'missing.pth'}"


def test_metrics_table_lists_every_metric():
    table = format_metrics_table({"l1": 0.1}, {"l1": 0.2}, skipped={"fid": "skipped: weights not found at /x"})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "generator", "copy-the-sketch"]
    assert "0.1000" in lines[2] and "0.2000" in lines[2] and lines[3].split() == ["fid", "-", "-"]
    assert lines[-1] == "fid: skipped: weights not found at /x"


# --- the evaluate verb ------------------------------------------------------------------------
@pytest.fixture
def tiny_weights(tmp_path):
    from pix2pix_lib.weights import save_generator
    from pix2pix_lib.models import build_generator

    config = {"image_size": 32, "ngf": 8, "norm": "batch", "skips": True, "dropout": True}
    return save_generator(tmp_path / "g.pt", build_generator(**config), config)


def test_evaluate_cli_prints_a_table_and_writes_json(tmp_path, tiny_weights, capsys, monkeypatch):
    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(tmp_path / "none.pth"))
    monkeypatch.setenv("PIX2PIX_LPIPS_WEIGHTS", str(tmp_path / "none2.pth"))
    data = write_tiny_pairs(tmp_path / "pairs", size=64, n_train=1, n_val=5)  # read at the weights' 32 px
    out = tmp_path / "report.json"
    rc = main(["evaluate", "--weights", str(tiny_weights), "--data", str(data), "--json", str(out),
               "--batch-size", "2", "--max-images", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "copy-the-sketch" in printed and "l1_changed" in printed and "3 pairs at 32 px" in printed
    report = json.loads(out.read_text())
    assert report["images"] == 3 and report["image_size"] == 32 and report["split"] == "val"
    assert set(report["metrics"]) == {"l1", "l1_changed", "psnr", "ssim", "sharpness", "colourfulness"}  # numbers
    assert report["skipped"]["fid"].startswith("skipped: weights not found at")
    assert math.isfinite(report["baseline"]["l1"]) and report["baseline"]["l1"] != report["metrics"]["l1"]


def test_evaluate_cli_names_missing_inputs(tmp_path, tiny_weights, capsys):
    data = write_tiny_pairs(tmp_path / "pairs", size=32, n_train=1, n_val=2)
    assert main(["evaluate", "--weights", str(tmp_path / "nope.pt"), "--data", str(data)]) == 2
    assert "nope.pt: no such weights file" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tiny_weights), "--data", str(tmp_path / "nodata")]) == 2
    assert "nodata/val: no such dataset folder" in capsys.readouterr().err
