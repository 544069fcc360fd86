"""A training run a class can sit through: a time budget that ends it cleanly, feedback long before
the first epoch ends, a plan line before the first step, and no folder left by a failed start."""

import logging

import pytest
import torch
from PIL import Image

from pix2pix_lib import cli
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.runs import BEST_GENERATOR, CHECKPOINT, read_log
from pix2pix_lib.train import EpochReport, ProgressReport, fit, load_checkpoint
from pix2pix_lib.weights import load_generator

TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2)


def test_a_spent_budget_ends_the_run_cleanly_with_its_best_model_and_it_resumes(tiny_pairs, tmp_path, caplog):
    run = tmp_path / "run"
    config = TrainConfig(**TINY, epochs=3, epochs_decay=0, max_minutes=1e-4)  # 6 ms: spent after one step
    with caplog.at_level(logging.INFO, logger="pix2pix_lib"):
        history = fit(config, tiny_pairs, run, progress=False)
    assert [row["epoch"] for row in history] == [1] and history[0]["step"] == 1  # one step, then the budget
    assert any("time budget of 0.0001 min reached: training ended after epoch 1 of 3" in r.message
               for r in caplog.records)
    _, card = load_generator(run / BEST_GENERATOR)  # the best model so far, validated and saved
    assert card.epoch == 1 and card.metrics["l1"] == pytest.approx(history[0]["val_l1"])
    assert load_checkpoint(run / CHECKPOINT).epoch == 1 and len(read_log(run / "log.csv")) == 1
    history = fit({"max_minutes": None}, tiny_pairs, run, resume=True, progress=False)  # the rest, no budget
    assert [row["epoch"] for row in history] == [1, 2, 3] and history[-1]["step"] == 1 + 2 * 4


def test_the_budget_is_an_option_of_the_train_verb(tiny_pairs, tmp_path, capsys):
    args = ["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), "--image-size", "32", "--ngf", "8",
            "--ndf", "8", "--patch-size", "16", "--batch-size", "2", "--precision", "fp32", "--epochs", "2",
            "--epochs-decay", "0", "--n-samples", "2", "--precise-bn-batches", "1", "--quiet", "--max-minutes", "0.0001"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("training into") and "cpu (fp32)" in first and "8 training / 2 validation pairs" in first
    assert "4 steps of 2 per epoch" in first and "time budget 0.0001 min" in first  # the plan, before any step
    assert "time budget of 0.0001 min reached" in out and "best validation L1" in out
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT).epoch == 1


def test_progress_reports_come_before_the_first_epoch_ends_and_change_nothing(tiny_pairs, tmp_path):
    events = []
    config = TrainConfig(**TINY, epochs=1, epochs_decay=0, log_every=1)
    fit(config, tiny_pairs, tmp_path / "reported", progress=False, report_seconds=0,
        on_progress=events.append, on_epoch_end=events.append)
    progress = [e for e in events if isinstance(e, ProgressReport)]
    assert isinstance(events[0], ProgressReport) and isinstance(events[-1], EpochReport)
    assert [r.step for r in progress] == [1, 2, 3, 4] and progress[1].epoch == pytest.approx(0.5)
    first = progress[0]
    assert set(first.losses) == {"G_gan", "G_L1", "D_real", "D_fake"} and first.images_per_s > 0
    assert first.eta_s >= 0 and first.budget_left_s is None and first.history == []
    assert isinstance(first.samples, Image.Image) and first.samples.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)
    assert len(progress[-1].steps) == 4  # the step windows so far: the first curve
    # The reports only look: the same run without them ends with the same weights.
    fit(config, tiny_pairs, tmp_path / "quiet", progress=False)
    reported, quiet = (torch.load(tmp_path / name / CHECKPOINT, weights_only=True)["generator"]
                       for name in ("reported", "quiet"))
    assert all(torch.equal(reported[k], quiet[k]) for k in quiet)


def test_a_failed_start_leaves_no_run_folder_behind(tiny_pairs, tmp_path):
    (tiny_pairs / "train" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    mine = tmp_path / "mine"  # a folder that was there before is never removed
    mine.mkdir()
    with pytest.raises(ValueError, match="broken.png"):
        fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, mine, progress=False)
    assert mine.is_dir()
