"""Precise BN: batch norm's running statistics re-estimated before validation, so eval mode holds (issue #16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from pix2pix_lib.config import preset
from pix2pix_lib.data.loaders import make_datasets
from pix2pix_lib.generate import generation_mode
from pix2pix_lib.metrics import evaluate_generator, evaluate_predictions
from pix2pix_lib.models import recompute_batch_norm
from pix2pix_lib.train import fit
from pix2pix_lib.weights import load_generator

SHOES = Path(__file__).resolve().parents[2] / "shared" / "data" / "edges2shoes-2k"


def test_recompute_batch_norm_averages_the_batches_and_restores_the_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).eval()
    net[1].running_mean.fill_(7.0)  # stale statistics, as a lagging running average leaves them
    batches = [torch.randn(2, 3, 8, 8) * (i + 1) + i for i in range(5)]
    seen = []
    net[2].register_forward_hook(lambda m, args, out: seen.append(m.training))
    assert recompute_batch_norm(net, batches) == 5
    assert seen == [False] * 5  # dropout off: the statistics of the network eval mode runs
    with torch.no_grad():
        means = torch.stack([net[0](b).mean(dim=(0, 2, 3)) for b in batches])  # (5, 4) per-batch means
    assert torch.allclose(net[1].running_mean, means.mean(0), atol=1e-5)  # a plain average, not an EMA
    assert net[1].momentum == 0.1 and not net.training and int(net[1].num_batches_tracked) == 5
    assert recompute_batch_norm(nn.Sequential(nn.Conv2d(3, 4, 3)), batches) == 0  # nothing to do


def _batch_statistics_l1(generator, loader) -> float:
    """L1 with each validation batch's own statistics, dropout off: eval mode but for the statistics."""
    with generation_mode(generator, "paper"):
        for m in generator.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        return evaluate_predictions(lambda a: generator(a), loader)["l1"]


def test_a_saved_generator_scores_the_same_in_eval_mode_as_with_batch_statistics(tmp_path):
    # The regression the issue measured on real pairs: without precise BN, eval-mode L1 of a saved
    # generator was up to 3x its batch-statistics L1 at some epochs (benchmarks/precise_bn.py).
    if not SHOES.is_dir():
        reason = f"{SHOES} is not here (the shared edges2shoes pairs come with the course machines only)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the precise-BN regression test, but {reason}")
        pytest.skip(reason)
    config = preset("quick", epochs=2, epochs_decay=1, max_steps_per_epoch=60, precise_bn_batches=50,
                    precision="bf16" if preset("quick").precision == "bf16" else "fp32", device="cpu")
    train_set, val_set = make_datasets(config, SHOES)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size)
    scores = []

    def check_saved_generator(report):
        generator, _ = load_generator(tmp_path / "run" / "generator.pt")
        eval_l1 = evaluate_generator(generator, val_loader)["l1"]
        scores.append((report.epoch, eval_l1, _batch_statistics_l1(generator, val_loader)))

    fit(config, SHOES, tmp_path / "run", progress=False, on_epoch_end=check_saved_generator,
        datasets=(train_set, val_set))
    assert len(scores) == 3
    # Eval mode may do better than batch statistics of 8 pictures (its statistics average 400): what
    # must not happen is the old failure, eval mode far worse. Within 5 % above, at every epoch.
    for epoch, eval_l1, batch_l1 in scores:
        assert eval_l1 <= 1.05 * batch_l1, f"epoch {epoch}: eval L1 {eval_l1:.4f}, batch statistics {batch_l1:.4f}"
